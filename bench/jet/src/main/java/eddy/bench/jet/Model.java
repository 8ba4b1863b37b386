package eddy.bench.jet;

import java.io.Serializable;

/**
 * The events and results of the nexmark-jet variant, as in Eddy's
 * {@code eddy-nexmark} crate ({@code src/jet.rs}): strings are left empty on
 * both sides, so both engines move the same data.
 */
final class Model {
    private Model() {
    }

    /** A result whose latency is measured from {@link #referenceMs()}. */
    interface Timed extends Serializable {
        /** The window end, or the input event's time, ms since the epoch. */
        long referenceMs();
    }

    /** A bid. */
    record Bid(long auction, long bidder, long price, long dateTime) implements Timed {
        @Override
        public long referenceMs() {
            return dateTime;
        }
    }

    /** A new person. */
    record Person(long id, String name, long dateTime) implements Serializable {
    }

    /** A new auction. */
    record Auction(long id, long seller, long dateTime) implements Serializable {
    }

    /** Q2's result. */
    record AuctionPrice(long auction, long price, long dateTime) implements Timed {
        @Override
        public long referenceMs() {
            return dateTime;
        }
    }

    /** A row of a windowed result: Q5 (auction, count), Q7 (auction, price), Q8 (person, auctions). */
    record WindowRow(long windowEnd, long key, long value) implements Timed {
        @Override
        public long referenceMs() {
            return windowEnd;
        }
    }

    /** Q13's result. */
    record EnrichedBid(Bid bid, String value) implements Timed {
        @Override
        public long referenceMs() {
            return bid.dateTime();
        }
    }

    /** Hazelcast's {@code HashUtil.fastLongMix}, written out so both harnesses share it. */
    static long fastLongMix(long x) {
        long h = x * 0x9E3779B97F4A7C15L;
        h ^= h >>> 32;
        return h ^ (h >>> 16);
    }

    /** nexmark-jet's {@code getRandom(seq, range)}. */
    static long random(long seq, long range) {
        return (fastLongMix(seq) & Long.MAX_VALUE) % Math.max(1, range);
    }

    /** Event {@code seq} of the query's stream (see {@code src/jet.rs}). */
    static Object event(String query, long seq, long ts, long keys) {
        switch (query) {
            case "q5":
            case "q13":
                return new Bid(seq % keys, seq, 0, ts);
            case "q7":
                return new Bid(seq, seq, random(seq, Math.max(1, seq / 100)), ts);
            case "q8":
                return seq % 2 == 0
                        ? new Person(random(seq, keys), "", ts)
                        : new Auction(seq, random(137 * seq, keys), ts);
            default:
                return new Bid(seq % keys, seq, random(seq, 100), ts);
        }
    }
}
