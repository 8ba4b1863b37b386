//! What the examples share: their command line (`--events N`,
//! `--bootstrap HOST:PORT`) and the Kafka plumbing of a run over Kafka
//! (fresh topics, a producer job writing the generated input, a count of
//! what the example's job wrote). The pipelines themselves live in the
//! examples.

use anyhow::Context;
use eddy::kafka::create_topic;
use eddy::prelude::*;
use eddy::{Shared, Sink, Source};
use serde::Serialize;

/// What an example was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Number of input events to generate.
    pub events: u64,
    /// Run over the Kafka cluster at this address instead of in-process.
    pub bootstrap: Option<String>,
}

impl Options {
    /// Parses the arguments after the program name; the error says which
    /// argument was wrong and why.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        events_default: u64,
    ) -> Result<Options, String> {
        let mut options = Options {
            events: events_default,
            bootstrap: None,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .filter(|v| !v.starts_with("--"))
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match arg.as_str() {
                "--events" => {
                    let text = value("--events")?;
                    options.events = match text.parse::<u64>() {
                        Ok(n) if n > 0 => n,
                        _ => {
                            return Err(format!(
                                "--events takes a whole number above 0, not '{text}'"
                            ))
                        }
                    };
                }
                "--bootstrap" => {
                    let text = value("--bootstrap")?;
                    if !text.contains(':') {
                        return Err(format!("--bootstrap takes HOST:PORT, not '{text}'"));
                    }
                    options.bootstrap = Some(text);
                }
                other => return Err(format!("unknown argument '{other}'")),
            }
        }
        Ok(options)
    }

    /// The options of this process's command line; on a bad argument,
    /// prints what was wrong and the usage, and exits with status 2.
    pub fn from_command_line(example: &str, events_default: u64) -> Options {
        Options::parse(std::env::args().skip(1), events_default).unwrap_or_else(|e| {
            eprintln!("{example}: {e}");
            eprintln!(
                "usage: cargo run -p eddy --example {example} -- [--events N] [--bootstrap HOST:PORT]\n  \
                 --events N            input events to generate (default {events_default})\n  \
                 --bootstrap HOST:PORT run over this Kafka cluster instead of in-process"
            );
            std::process::exit(2)
        })
    }
}

/// Partitions of the topics a run creates: more than one, so that the
/// Kafka source's instances share the reading, as in production.
const PARTITIONS: i32 = 4;

/// How long creating a topic may take before the run gives up.
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);

/// The topics of one run over Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// The cluster's bootstrap address.
    pub bootstrap: String,
    /// The generated input, written by [`produce`].
    pub input: String,
    /// The example's results.
    pub output: String,
}

impl Topics {
    /// Creates an input and an output topic named after the example and
    /// the current time, so that a run never reads another run's records.
    pub fn create(bootstrap: &str, example: &str) -> anyhow::Result<Topics> {
        let run_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("the system clock is before 1970")?
            .as_millis();
        let topics = Topics {
            bootstrap: bootstrap.to_string(),
            input: format!("eddy-example-{example}-input-{run_ms}"),
            output: format!("eddy-example-{example}-output-{run_ms}"),
        };
        for topic in [&topics.input, &topics.output] {
            create_topic(bootstrap, topic, PARTITIONS, CREATE_TIMEOUT)
                .with_context(|| format!("creating topic '{topic}' at {bootstrap}"))?;
        }
        Ok(topics)
    }
}

/// Writes the items of `source` to the input topic as JSON, keyed by `key`,
/// with a job of its own; returns when the broker acknowledged all of them.
/// Records of one key land in one partition in generation order, which is
/// what lets the example's job read them in event-time order per key.
pub fn produce<S>(
    eddy: &Eddy,
    topics: &Topics,
    source: S,
    key: impl Fn(&S::Out) -> String + Send + Sync + 'static,
) -> anyhow::Result<()>
where
    S: Source,
    S::Out: Serialize,
{
    let p = Pipeline::new();
    p.read_from(source)
        .named("generator")
        .set_local_parallelism(1)
        .write_to(
            KafkaSink::topic(topics.input.as_str())
                .bootstrap(topics.bootstrap.as_str())
                .json::<S::Out>()
                .key_string_by(key)
                // One producer keeps each key's records in generation order.
                .parallelism(1),
        );
    eddy.submit(p, JobConfig::default().name("produce-input"))
        .and_then(|job| job.join())
        .with_context(|| format!("producing the input to topic '{}'", topics.input))
}

/// A sink writing the example's results to the output topic as JSON,
/// keyed by `key`.
pub fn output_sink<T: Serialize + Send + 'static>(
    topics: &Topics,
    key: impl Fn(&T) -> String + Send + Sync + 'static,
) -> impl Sink<T> {
    KafkaSink::topic(topics.output.as_str())
        .bootstrap(topics.bootstrap.as_str())
        .json::<T>()
        .key_string_by(key)
}

/// The number of records in the output topic, read back by a batch job.
pub fn count_output(eddy: &Eddy, topics: &Topics) -> anyhow::Result<u64> {
    let p = Pipeline::new();
    let (sink, count) = Sinks::noop();
    p.read_from(
        KafkaSource::topic(topics.output.as_str())
            .bootstrap(topics.bootstrap.as_str())
            .bytes()
            .stop_at_end(),
    )
    .write_to(sink);
    eddy.submit(p, JobConfig::default().name("count-output"))
        .and_then(|job| job.join())
        .with_context(|| format!("reading back topic '{}'", topics.output))?;
    Ok(count.load(std::sync::atomic::Ordering::Relaxed))
}

/// One run of an example: the engine, and over Kafka the topics whose
/// input was produced before the example's job starts.
pub struct ExampleRun {
    /// The engine the example's jobs run on.
    pub eddy: Eddy,
    /// The input and output topics, over Kafka.
    pub topics: Option<Topics>,
}

impl ExampleRun {
    /// Starts a run named `example`: over Kafka, creates fresh topics and
    /// writes `options.events` generated items to the input topic, keyed
    /// by `key`.
    pub fn start<T>(
        options: &Options,
        example: &str,
        generate: fn(u64) -> T,
        key: impl Fn(&T) -> String + Send + Sync + 'static,
    ) -> anyhow::Result<ExampleRun>
    where
        T: Serialize + Clone + Send + 'static,
    {
        let eddy = Eddy::new(EddyConfig::default());
        let topics = match &options.bootstrap {
            None => None,
            Some(bootstrap) => {
                let topics = Topics::create(bootstrap, example)?;
                let generated = Sources::generator(generate).limit(options.events);
                produce(&eddy, &topics, generated, key)?;
                Some(topics)
            }
        };
        Ok(ExampleRun { eddy, topics })
    }

    /// Runs the example's job `p` to its end; over Kafka, `results` also go
    /// to the output topic, keyed by `key`.
    pub fn run_job<T>(
        &self,
        p: Pipeline,
        name: &str,
        results: &Shared<T>,
        key: impl Fn(&T) -> String + Send + Sync + 'static,
    ) -> anyhow::Result<()>
    where
        T: Serialize + Clone + Send + 'static,
    {
        if let Some(topics) = &self.topics {
            results.stream().write_to(output_sink(topics, key));
        }
        self.eddy
            .submit(p, JobConfig::default().name(name))
            .and_then(|job| job.join())
            .with_context(|| format!("the {name} job failed"))
    }

    /// Over Kafka, what went through the topics.
    pub fn finish(self) -> anyhow::Result<Option<KafkaRun>> {
        let Some(topics) = self.topics else {
            return Ok(None);
        };
        Ok(Some(KafkaRun {
            records_out: count_output(&self.eddy, &topics)?,
            topics,
        }))
    }
}

/// What a run over Kafka did besides the example's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaRun {
    /// The topics it created.
    pub topics: Topics,
    /// Records found in the output topic afterwards.
    pub records_out: u64,
}

impl KafkaRun {
    /// Prints where the records went.
    pub fn print(&self) {
        println!(
            "over Kafka at {}: input topic {}, output topic {} ({} records)",
            self.topics.bootstrap, self.topics.input, self.topics.output, self.records_out
        );
    }
}
