package eddy.bench.jet;

import com.hazelcast.config.Config;
import com.hazelcast.core.Hazelcast;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.function.ComparatorEx;
import com.hazelcast.function.FunctionEx;
import com.hazelcast.jet.JetService;
import com.hazelcast.jet.Traversers;
import com.hazelcast.jet.aggregate.AggregateOperation;
import com.hazelcast.jet.aggregate.AggregateOperation1;
import com.hazelcast.jet.config.JobConfig;
import com.hazelcast.jet.core.ProcessorMetaSupplier;
import com.hazelcast.jet.core.ProcessorSupplier;
import com.hazelcast.jet.datamodel.KeyedWindowResult;
import com.hazelcast.jet.datamodel.WindowResult;
import com.hazelcast.jet.pipeline.JoinClause;
import com.hazelcast.jet.pipeline.Pipeline;
import com.hazelcast.jet.pipeline.Sink;
import com.hazelcast.jet.pipeline.SinkBuilder;
import com.hazelcast.jet.pipeline.Sources;
import com.hazelcast.jet.pipeline.StreamStage;
import com.hazelcast.jet.pipeline.WindowDefinition;
import com.hazelcast.jet.pipeline.test.TestSources;
import org.HdrHistogram.Histogram;

import java.io.Serializable;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;
import java.util.stream.LongStream;

import static com.hazelcast.jet.aggregate.AggregateOperations.counting;
import static com.hazelcast.jet.aggregate.AggregateOperations.topN;

/**
 * NEXMark (nexmark-jet's events) on Hazelcast Jet in an embedded member,
 * measured as Eddy's {@code eddy-nexmark} harness measures: events per wall
 * second and per CPU-second of the process, latency percentiles (emission
 * wall clock minus window end or event time, HdrHistogram, one sample per new
 * reference time per sink instance, none in the first 20% of the run), peak
 * RSS. The same queries: Q0, Q1, Q2, Q5, Q7, Q8, Q13.
 *
 * <p>Usage: {@code --query q5 [--events N] [--rate R] [--parallelism P] [--json]}.
 * Before the measured job, a warm-up job of a fifth of the events runs in the
 * same JVM so that the JIT has compiled the hot paths (Eddy needs none).
 */
public final class NexmarkJet {
    /** Event-time rate without --rate: Eddy's NOMINAL_RATE_PER_SEC. */
    static final double NOMINAL_RATE_PER_SEC = 1_000_000;
    /** Distinct keys: nexmark-jet's num-distinct-keys and Eddy's JET_KEYS. */
    static final long KEYS = 10_000;
    /** Share of a fixed-rate run not measured: Eddy's WARMUP_FRACTION. */
    static final double WARMUP_FRACTION = 0.2;
    /** Window size and slide of Q5 and Q8, and Q7's tumbling window: Eddy's QueryConfig::jet. */
    static final long WINDOW_MS = 10_000;
    static final long SLIDE_MS = 20;
    /** Q2's modulus, as in Eddy. */
    static final long Q2_MODULUS = 123;

    /** Histograms of the sink instances of the running job, merged at the end. */
    static final ConcurrentLinkedQueue<Histogram> HISTOGRAMS = new ConcurrentLinkedQueue<>();
    static final AtomicLong OUTPUTS = new AtomicLong();

    private NexmarkJet() {
    }

    public static void main(String[] args) throws Exception {
        String query = "q5";
        long events = 10_000_000;
        Double rate = null;
        int parallelism = Runtime.getRuntime().availableProcessors();
        boolean json = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--query" -> query = args[++i].toLowerCase(Locale.ROOT);
                case "--events" -> events = Long.parseLong(args[++i].replace("_", ""));
                case "--rate" -> rate = Double.parseDouble(args[++i].replace("_", ""));
                case "--parallelism" -> parallelism = Integer.parseInt(args[++i]);
                case "--json" -> json = true;
                default -> {
                    System.err.println("unknown option " + args[i]);
                    System.exit(2);
                }
            }
        }
        if (!List.of("q0", "q1", "q2", "q5", "q7", "q8", "q13").contains(query)) {
            System.err.println("query " + query + " is not implemented on Jet: use q0, q1, q2, q5, q7, q8 or q13");
            System.exit(2);
        }
        System.setProperty("hazelcast.logging.type", "none");
        Config config = new Config();
        config.setClusterName("nexmark-" + ProcessHandle.current().pid());
        config.setProperty("hazelcast.phone.home.enabled", "false");
        config.getNetworkConfig().getJoin().getMulticastConfig().setEnabled(false);
        config.getNetworkConfig().getJoin().getAutoDetectionConfig().setEnabled(false);
        config.getJetConfig().setEnabled(true).setCooperativeThreadCount(parallelism);
        HazelcastInstance hz = Hazelcast.newHazelcastInstance(config);
        try {
            JetService jet = hz.getJet();
            runOnce(jet, query, Math.max(1, events / 5), rate, parallelism);
            String report = runOnce(jet, query, events, rate, parallelism).format(json);
            System.out.println(report);
        } finally {
            hz.shutdown();
        }
        System.exit(0);
    }

    /** One measured job. */
    static Report runOnce(JetService jet, String query, long events, Double rate, int parallelism) throws Exception {
        HISTOGRAMS.clear();
        OUTPUTS.set(0);
        double eventRate = rate != null ? rate : NOMINAL_RATE_PER_SEC;
        long startMs = System.currentTimeMillis() + 100;
        long startNanos = System.nanoTime() + 100_000_000L;
        long spanMs = (long) (events * 1000.0 / eventRate);
        long fromMs = rate != null ? startMs + (long) (spanMs * WARMUP_FRACTION) : Long.MAX_VALUE;
        long untilMs = startMs + spanMs;
        boolean windowed = List.of("q5", "q7", "q8").contains(query);

        Pipeline p = Pipeline.create();
        final String q = query;
        final long n = events;
        final boolean throttled = rate != null;
        StreamStage<Object> source = p.readFrom(Sources.<Object>streamFromProcessorWithWatermarks(
                        "generator", true,
                        policy -> ProcessorMetaSupplier.of(parallelism, ProcessorSupplier.of(
                                () -> new GeneratorP(q, n, eventRate, throttled, startMs, startNanos, KEYS)))))
                .withNativeTimestamps(0);
        Sink<Model.Timed> sink = latencySink(fromMs, untilMs);
        // Q8 reads no bids, and Jet rejects a stage that leads nowhere.
        StreamStage<Model.Bid> bids = query.equals("q8")
                ? null
                : source.filter(e -> e instanceof Model.Bid).map(e -> (Model.Bid) e);
        switch (query) {
            case "q0" -> bids.writeTo(sink);
            case "q1" -> bids.map(b -> new Model.Bid(b.auction(), b.bidder(), b.price() * 908 / 1000, b.dateTime()))
                    .writeTo(sink);
            case "q2" -> bids.filter(b -> b.auction() % Q2_MODULUS == 0)
                    .map(b -> new Model.AuctionPrice(b.auction(), b.price(), b.dateTime()))
                    .writeTo(sink);
            case "q5" -> bids
                    .window(WindowDefinition.sliding(WINDOW_MS, SLIDE_MS))
                    .groupingKey(Model.Bid::auction)
                    .aggregate(counting())
                    .window(WindowDefinition.tumbling(SLIDE_MS))
                    // nexmark-jet's topN(10), as Eddy's QueryConfig::jet (q5_top_n).
                    .aggregate(topN(10, ComparatorEx.comparing(KeyedWindowResult<Long, Long>::result)))
                    .flatMap(w -> Traversers.traverseIterable(w.result().stream()
                            .map(c -> (Model.Timed) new Model.WindowRow(w.end(), c.key(), c.result()))
                            .collect(Collectors.toList())))
                    .writeTo(sink);
            case "q7" -> bids
                    .window(WindowDefinition.tumbling(WINDOW_MS))
                    .aggregate(maxWithTies(Model.Bid::price, Model.Bid::auction))
                    .flatMap(NexmarkJet::rows)
                    .writeTo(sink);
            case "q8" -> {
                StreamStage<Model.Person> persons =
                        source.filter(e -> e instanceof Model.Person).map(e -> (Model.Person) e);
                StreamStage<Model.Auction> auctions =
                        source.filter(e -> e instanceof Model.Auction).map(e -> (Model.Auction) e);
                persons.window(WindowDefinition.sliding(WINDOW_MS, SLIDE_MS))
                        .groupingKey(Model.Person::id)
                        .aggregate2(counting(), auctions.groupingKey(Model.Auction::seller), counting())
                        .filter(w -> w.result().f0() > 0 && w.result().f1() > 0)
                        .map(w -> (Model.Timed) new Model.WindowRow(w.end(), w.key(), w.result().f1()))
                        .writeTo(sink);
            }
            case "q13" -> {
                List<Map.Entry<Long, String>> side = LongStream.range(0, KEYS)
                        .mapToObj(k -> com.hazelcast.jet.Util.entry(k, "value-" + k))
                        .collect(Collectors.toList());
                bids.hashJoin(p.readFrom(TestSources.items(side)),
                                JoinClause.joinMapEntries(b -> b.auction() % KEYS),
                                (b, v) -> (Model.Timed) new Model.EnrichedBid(b, v))
                        .writeTo(sink);
            }
            default -> throw new IllegalArgumentException(query);
        }

        var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        long cpuBefore = os.getProcessCpuTime();
        long wallBefore = System.nanoTime();
        jet.newJob(p, new JobConfig().setName("nexmark-" + query)).join();
        double wallSecs = (System.nanoTime() - wallBefore) / 1e9;
        double cpuSecs = (os.getProcessCpuTime() - cpuBefore) / 1e9;

        Histogram merged = new Histogram(1, 600_000_000L, 3);
        HISTOGRAMS.forEach(merged::add);
        Report r = new Report();
        r.query = query;
        r.events = events;
        r.parallelism = parallelism;
        r.rate = rate;
        r.outputs = OUTPUTS.get();
        r.wallSecs = wallSecs;
        r.cpuSecs = cpuSecs;
        r.latency = rate != null ? merged : null;
        r.peakRssBytes = peakRssBytes();
        r.windowed = windowed;
        return r;
    }

    /** Rows of a per-window "max with ties" result. */
    static com.hazelcast.jet.Traverser<Model.Timed> rows(WindowResult<MaxTies> w) {
        MaxTies m = w.result();
        List<Model.Timed> out = new ArrayList<>(m.keys.size());
        for (long key : m.keys) {
            out.add(new Model.WindowRow(w.end(), key, m.best));
        }
        return Traversers.traverseIterable(out);
    }

    /** The largest value and every key that reached it. */
    static final class MaxTies implements Serializable {
        long best = Long.MIN_VALUE;
        final List<Long> keys = new ArrayList<>();

        void add(long value, long key) {
            if (value > best) {
                best = value;
                keys.clear();
            }
            if (value == best) {
                keys.add(key);
            }
        }

        void combine(MaxTies other) {
            if (other.best > best) {
                best = other.best;
                keys.clear();
            }
            if (other.best == best) {
                keys.addAll(other.keys);
            }
        }
    }

    /** Eddy's {@code max_with_ties}: the rows equal to the maximum. */
    static <T> AggregateOperation1<T, MaxTies, MaxTies> maxWithTies(
            FunctionEx<T, Long> value, FunctionEx<T, Long> key) {
        return AggregateOperation
                .withCreate(MaxTies::new)
                .<T>andAccumulate((acc, item) -> acc.add(value.apply(item), key.apply(item)))
                .andCombine(MaxTies::combine)
                .andExportFinish(acc -> acc);
    }

    /** Counts results and records their latency, one sample per new reference time per instance. */
    static Sink<Model.Timed> latencySink(long fromMs, long untilMs) {
        return SinkBuilder.sinkBuilder("latency", ctx -> new Recorder(fromMs, untilMs))
                .<Model.Timed>receiveFn(Recorder::record)
                .destroyFn(Recorder::close)
                .build();
    }

    /** The state of one sink instance. */
    static final class Recorder {
        final long fromMs;
        final long untilMs;
        final Histogram histogram = new Histogram(1, 600_000_000L, 3);
        long outputs;
        long lastReferenceMs = Long.MIN_VALUE;

        Recorder(long fromMs, long untilMs) {
            this.fromMs = fromMs;
            this.untilMs = untilMs;
        }

        void record(Model.Timed item) {
            outputs++;
            long reference = item.referenceMs();
            if (reference > lastReferenceMs) {
                lastReferenceMs = reference;
                if (reference >= fromMs && reference <= untilMs) {
                    Instant now = Instant.now();
                    long nowUs = now.getEpochSecond() * 1_000_000L + now.getNano() / 1000;
                    histogram.recordValue(Math.min(Math.max(0, nowUs - reference * 1000), histogram.getHighestTrackableValue()));
                }
            }
        }

        void close() {
            OUTPUTS.addAndGet(outputs);
            HISTOGRAMS.add(histogram);
        }
    }

    static Long peakRssBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.split("\\s+")[1]) * 1024;
                }
            }
        } catch (Exception e) {
            return null;
        }
        return null;
    }

    /** The figures of a run, with the same names as Eddy's {@code Report}. */
    static final class Report {
        String query;
        long events;
        int parallelism;
        Double rate;
        long outputs;
        double wallSecs;
        double cpuSecs;
        Histogram latency;
        Long peakRssBytes;
        boolean windowed;

        String format(boolean json) {
            double evPerSec = events / wallSecs;
            double evPerCpu = events / cpuSecs;
            int cores = Runtime.getRuntime().availableProcessors();
            String flags = String.join(" ", ManagementFactory.getRuntimeMXBean().getInputArguments());
            if (json) {
                String lat = latency == null ? "null" : String.format(Locale.ROOT,
                        "{\"samples\":%d,\"p50_us\":%d,\"p99_us\":%d,\"p999_us\":%d,\"p9999_us\":%d,\"max_us\":%d}",
                        latency.getTotalCount(), latency.getValueAtPercentile(50), latency.getValueAtPercentile(99),
                        latency.getValueAtPercentile(99.9), latency.getValueAtPercentile(99.99), latency.getMaxValue());
                return String.format(Locale.ROOT,
                        "{\"engine\":\"jet\",\"query\":\"%s\",\"variant\":\"jet\",\"events\":%d,\"parallelism\":%d,"
                                + "\"rate_per_sec\":%s,\"outputs\":%d,\"wall_secs\":%.4f,\"events_per_sec\":%.1f,"
                                + "\"cpu_secs\":%.4f,\"events_per_cpu_sec\":%.1f,\"latency\":%s,\"peak_rss_bytes\":%s,"
                                + "\"cores\":%d,\"jvm_flags\":\"%s\"}",
                        query, events, parallelism, rate == null ? "null" : String.format(Locale.ROOT, "%.1f", rate),
                        outputs, wallSecs, evPerSec, cpuSecs, evPerCpu, lat,
                        peakRssBytes == null ? "null" : peakRssBytes.toString(), cores, flags.replace("\"", "'"));
            }
            StringBuilder sb = new StringBuilder();
            sb.append(String.format(Locale.ROOT, "%-22s jet %s (jet)%n", "query", query));
            sb.append(String.format(Locale.ROOT, "%-22s %d%n", "events", events));
            sb.append(String.format(Locale.ROOT, "%-22s %s%n", "rate",
                    rate == null ? "as fast as possible" : String.format(Locale.ROOT, "%.0f events/s", rate)));
            sb.append(String.format(Locale.ROOT, "%-22s %d (of %d cores)%n", "parallelism", parallelism, cores));
            sb.append(String.format(Locale.ROOT, "%-22s %d%n", "outputs", outputs));
            sb.append(String.format(Locale.ROOT, "%-22s %.3f s%n", "wall time", wallSecs));
            sb.append(String.format(Locale.ROOT, "%-22s %.0f%n", "events/s", evPerSec));
            sb.append(String.format(Locale.ROOT, "%-22s %.3f s%n", "cpu time", cpuSecs));
            sb.append(String.format(Locale.ROOT, "%-22s %.0f%n", "events/cpu-s", evPerCpu));
            if (latency == null) {
                sb.append(String.format(Locale.ROOT, "%-22s not measured (no --rate)%n", "latency"));
            } else {
                sb.append(String.format(Locale.ROOT,
                        "%-22s p50 %d us, p99 %d us, p99.9 %d us, p99.99 %d us, max %d us (%d samples)%n", "latency",
                        latency.getValueAtPercentile(50), latency.getValueAtPercentile(99),
                        latency.getValueAtPercentile(99.9), latency.getValueAtPercentile(99.99),
                        latency.getMaxValue(), latency.getTotalCount()));
            }
            sb.append(String.format(Locale.ROOT, "%-22s %.1f MiB%n", "peak rss",
                    peakRssBytes == null ? Double.NaN : peakRssBytes / (1024.0 * 1024.0)));
            sb.append(String.format(Locale.ROOT, "%-22s %s", "jvm flags", flags));
            return sb.toString();
        }
    }
}
