//! Test support for processors and pipelines; never shipped in release
//! builds (only `dev-dependencies` use it).
//!
//! * [`TestSupport`]: the processor harness. It feeds a processor its input
//!   and checks the output twice: once with a roomy outbox, and once with a
//!   one-slot outbox that is also full on every other call, so that every
//!   backpressure path runs. It asserts that each call with room made
//!   progress.
//! * [`Seed`]: seeds for randomised tests, printed when a test fails.
//! * [`assert_same_items`]: golden-output comparison regardless of order.
//!
//! ```
//! use eddy_core::{Inbox, Outbox, Processor, ProcessorError};
//! use eddy_testkit::{TestInput, TestOutput, TestSupport};
//!
//! /// Doubles every item.
//! struct Double;
//! impl Processor for Double {
//!     type In = i64;
//!     type Out = i64;
//!     fn process<O: Outbox<i64>>(&mut self, _: usize, inbox: &mut Inbox<i64>, outbox: &mut O) -> Result<(), ProcessorError> {
//!         while outbox.has_room() {
//!             let Some(x) = inbox.poll() else { break };
//!             let _ = outbox.offer(2 * x);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! TestSupport::verify(|| Double)
//!     .input(vec![TestInput::Item(1), TestInput::Watermark(5), TestInput::Item(2)])
//!     .expect_output(vec![TestOutput::Item(2), TestOutput::Watermark(5), TestOutput::Item(4)]);
//! ```

use eddy_core::{Inbox, Processor, ProcessorContext, VecOutbox, Watermark};
use std::fmt::Debug;

/// One step of a processor's input.
#[derive(Debug, Clone, PartialEq)]
pub enum TestInput<T> {
    /// A data item.
    Item(T),
    /// An advance of the input watermark.
    Watermark(i64),
}

/// One element of a processor's output.
#[derive(Debug, Clone, PartialEq)]
pub enum TestOutput<T> {
    /// A data item.
    Item(T),
    /// A watermark.
    Watermark(i64),
}

/// Most calls the harness makes for one step before it declares the
/// processor stuck: far above what any correct processor needs for the
/// small inputs of unit tests.
const CALLS_PER_STEP_MAX: usize = 1_000_000;

/// The processor harness; see the crate docs.
pub struct TestSupport<P: Processor, F> {
    supplier: F,
    input: Vec<TestInput<<P as Processor>::In>>,
    disregard_order: bool,
}

impl<P, F> TestSupport<P, F>
where
    P: Processor,
    P::In: Clone,
    P::Out: Debug + PartialEq,
    F: Fn() -> P,
{
    /// A harness for processors made by `supplier` (a fresh one per run).
    pub fn verify(supplier: F) -> Self {
        TestSupport {
            supplier,
            input: Vec::new(),
            disregard_order: false,
        }
    }

    /// The input to feed, in order.
    pub fn input(mut self, input: Vec<TestInput<P::In>>) -> Self {
        self.input = input;
        self
    }

    /// Compare items as multisets, and ignore watermarks (for processors
    /// that emit from hash maps).
    pub fn disregard_order(mut self) -> Self {
        self.disregard_order = true;
        self
    }

    /// Runs the processor with a roomy and with a starved outbox and asserts
    /// that both outputs equal `expected`.
    pub fn expect_output(self, expected: Vec<TestOutput<P::Out>>) {
        for starved in [false, true] {
            let actual = self.run(starved);
            let mode = if starved {
                "one-slot outbox, full every other call"
            } else {
                "roomy outbox"
            };
            if self.disregard_order {
                let items = |v: &[TestOutput<P::Out>]| -> Vec<String> {
                    let mut s: Vec<String> = v
                        .iter()
                        .filter(|o| matches!(o, TestOutput::Item(_)))
                        .map(|o| format!("{o:?}"))
                        .collect();
                    s.sort();
                    s
                };
                assert_eq!(items(&actual), items(&expected), "output differs ({mode})");
            } else {
                assert_eq!(actual, expected, "output differs ({mode})");
            }
        }
    }

    /// Runs the processor over the input and returns its output.
    pub fn run(&self, starved: bool) -> Vec<TestOutput<P::Out>> {
        let mut p = (self.supplier)();
        p.init(&ProcessorContext::standalone("under-test"))
            .expect("init failed");
        let mut h = Harness {
            outbox: VecOutbox::with_capacity(if starved { 1 } else { 1 << 20 }),
            output: Vec::new(),
            starved,
            calls: 0,
        };
        for step in &self.input {
            match step {
                TestInput::Item(item) => {
                    let mut inbox = Inbox::from_vec(vec![item.clone()]);
                    h.until_done(
                        "process",
                        |h, p: &mut P| {
                            let before = inbox.len();
                            p.process(0, &mut inbox, &mut h.outbox)
                                .expect("process failed");
                            (inbox.is_empty(), inbox.len() != before)
                        },
                        &mut p,
                    );
                }
                TestInput::Watermark(w) => {
                    h.until_done(
                        "try_process_watermark",
                        |h, p: &mut P| {
                            let done = p
                                .try_process_watermark(Watermark(*w), &mut h.outbox)
                                .expect("try_process_watermark failed");
                            (done, done)
                        },
                        &mut p,
                    );
                }
            }
        }
        h.until_done(
            "complete",
            |h, p: &mut P| {
                let done = p.complete(&mut h.outbox).expect("complete failed");
                (done, done)
            },
            &mut p,
        );
        p.close().expect("close failed");
        h.output
    }
}

struct Harness<T> {
    outbox: VecOutbox<T>,
    output: Vec<TestOutput<T>>,
    starved: bool,
    calls: usize,
}

impl<T> Harness<T> {
    /// Calls `call` until it reports done, draining the outbox after each
    /// call, and asserts progress in every call that had room.
    fn until_done<P>(
        &mut self,
        what: &str,
        mut call: impl FnMut(&mut Self, &mut P) -> (bool, bool),
        p: &mut P,
    ) {
        for _ in 0..CALLS_PER_STEP_MAX {
            self.calls += 1;
            let full = self.starved && self.calls % 2 == 0;
            self.outbox.set_capacity(if full {
                0
            } else if self.starved {
                1
            } else {
                1 << 20
            });
            let (done, progressed) = call(self, p);
            let emitted = !self.outbox.is_empty() || !self.outbox.watermarks.is_empty();
            assert!(
                full || done || progressed || emitted,
                "{what} made no progress although its outbox had room"
            );
            self.drain();
            if done {
                return;
            }
        }
        panic!("{what} did not finish within {CALLS_PER_STEP_MAX} calls");
    }

    fn drain(&mut self) {
        let items: Vec<T> = self.outbox.items.drain(..).collect();
        let mut marks = std::mem::take(&mut self.outbox.watermarks)
            .into_iter()
            .peekable();
        for (i, item) in items.into_iter().enumerate() {
            while let Some((_, w)) = marks.next_if(|(pos, _)| *pos <= i) {
                self.output.push(TestOutput::Watermark(w.0));
            }
            self.output.push(TestOutput::Item(item));
        }
        for (_, w) in marks {
            self.output.push(TestOutput::Watermark(w.0));
        }
    }
}

/// A seed for a randomised test: from `EDDY_TEST_SEED` if set, otherwise
/// fresh. Printed if the test fails, so that the failure can be replayed.
pub struct Seed {
    value: u64,
    name: &'static str,
}

impl Seed {
    /// The seed for the test called `name`.
    pub fn new(name: &'static str) -> Self {
        let value = std::env::var("EDDY_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0);
                nanos ^ (std::process::id() as u64).rotate_left(32)
            });
        Seed { value, name }
    }

    /// The seed value.
    pub fn value(&self) -> u64 {
        self.value
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test '{}' failed with seed {}; replay with EDDY_TEST_SEED={}",
                self.name, self.value, self.value
            );
        }
    }
}

/// Asserts that two outputs hold the same items, regardless of order.
pub fn assert_same_items<T: Debug>(actual: &[T], expected: &[T], what: &str) {
    let render = |v: &[T]| {
        let mut s: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
        s.sort();
        s
    };
    let (a, e) = (render(actual), render(expected));
    if a != e {
        let missing: Vec<_> = e.iter().filter(|x| !a.contains(x)).take(5).collect();
        let extra: Vec<_> = a.iter().filter(|x| !e.contains(x)).take(5).collect();
        panic!(
            "{what}: {} items, expected {}; missing (first 5): {missing:?}; unexpected (first 5): {extra:?}",
            a.len(),
            e.len()
        );
    }
}
