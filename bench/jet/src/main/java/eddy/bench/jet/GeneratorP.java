package eddy.bench.jet;

import com.hazelcast.jet.core.AbstractProcessor;
import java.util.ArrayDeque;
import com.hazelcast.jet.core.Watermark;

import static com.hazelcast.jet.impl.JetEvent.jetEvent;

/**
 * The source: instance {@code i} of {@code n} emits events {@code i, i + n, …}
 * below the event count, event {@code seq} with the timestamp
 * {@code startMs + seq / rate}. With a rate it emits an event only once its
 * scheduled time has come (open loop); without, as fast as it can. Like
 * Eddy's generator source, it completes when it has emitted its share, and it
 * emits a watermark whenever the event time advances by a millisecond.
 */
final class GeneratorP extends AbstractProcessor {
    private final String query;
    private final long events;
    private final double eventRate;
    private final boolean throttled;
    private final long startMs;
    private final long startNanos;
    private final long keys;
    private long next;
    private long step;
    private final ArrayDeque<Object> queue = new ArrayDeque<>(2);
    private long lastWatermark = Long.MIN_VALUE;

    GeneratorP(String query, long events, double eventRate, boolean throttled, long startMs, long startNanos, long keys) {
        this.query = query;
        this.events = events;
        this.eventRate = eventRate;
        this.throttled = throttled;
        this.startMs = startMs;
        this.startNanos = startNanos;
        this.keys = keys;
    }

    @Override
    protected void init(Context context) {
        next = context.globalProcessorIndex();
        step = context.totalParallelism();
    }

    @Override
    public boolean complete() {
        if (!drain()) {
            return false;
        }
        long due = events;
        if (throttled) {
            double elapsed = (System.nanoTime() - startNanos) / 1e9;
            due = Math.min(events, (long) Math.max(0, elapsed * eventRate));
        }
        while (next < due) {
            long ts = startMs + (long) (next * 1000.0 / eventRate);
            queue.add(jetEvent(ts, Model.event(query, next, ts, keys)));
            next += step;
            if (ts > lastWatermark) {
                lastWatermark = ts;
                queue.add(new Watermark(ts));
            }
            if (!drain()) {
                return false;
            }
        }
        return next >= events;
    }

    /** Emits what is queued; false when the outbox filled up first. */
    private boolean drain() {
        while (!queue.isEmpty()) {
            if (!tryEmit(queue.peek())) {
                return false;
            }
            queue.poll();
        }
        return true;
    }
}
