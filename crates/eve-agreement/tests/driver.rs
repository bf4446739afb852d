//! The driver's bookkeeping, with a scripted logic and a recording `Io`: effects in order,
//! one wake-up per deadline, timeouts handled only when due, and a logic that leaves work due
//! reported once instead of spinning.

use eve_agreement::{
    Completion, Driver, ExecCommand, ExecEvent, Io, Logic, Message, NodeId, Output, Time,
    TimerStillDue,
};
use eve_types::{BatchSeq, ReplicaId, VerifierId};

/// What the driver asked of the world.
#[derive(Debug, PartialEq, Eq)]
enum Done {
    Send(NodeId),
    Exec(BatchSeq),
    Wake(Time),
    Persist(BatchSeq),
}

struct Recorder {
    now: Time,
    done: Vec<Done>,
}

impl Io for Recorder {
    fn now(&self) -> Time {
        self.now
    }
    fn send(&mut self, to: NodeId, _msg: Message) {
        self.done.push(Done::Send(to));
    }
    fn execute(&mut self, command: ExecCommand) {
        let ExecCommand::Rollback { to } = command else {
            panic!("the script only rolls back");
        };
        self.done.push(Done::Exec(to));
    }
    fn wake_at(&mut self, at: Time) {
        self.done.push(Done::Wake(at));
    }
    fn persist(&mut self, memory: eve_agreement::VerifierMemory) {
        self.done.push(Done::Persist(memory.committed.0));
    }
}

/// A logic whose outputs and deadline the test sets; `sticky` makes its timeout leave the
/// deadline in place (a bug the driver must notice).
#[derive(Default)]
struct Script {
    outputs: Vec<Output>,
    deadline: Option<Time>,
    timeouts: u32,
    sticky: bool,
    /// A durable memory changed by the last event, for the driver to take.
    memory: Option<eve_agreement::VerifierMemory>,
}

impl Logic for Script {
    fn node_id(&self) -> NodeId {
        NodeId::Replica(ReplicaId(0))
    }
    fn on_message(&mut self, _now: Time, _from: NodeId, _msg: Message) -> Option<Completion> {
        None
    }
    fn on_exec_event(&mut self, _now: Time, _event: ExecEvent) {}
    fn on_timeout(&mut self, now: Time) {
        self.timeouts += 1;
        if !self.sticky {
            self.deadline = Some(now.plus_ms(10));
        }
    }
    fn next_timeout(&self) -> Option<Time> {
        self.deadline
    }
    fn poll_output(&mut self) -> Option<Output> {
        (!self.outputs.is_empty()).then(|| self.outputs.remove(0))
    }
    fn take_memory(&mut self) -> Option<eve_agreement::VerifierMemory> {
        self.memory.take()
    }
}

fn io(ms: u64) -> Recorder {
    Recorder {
        now: Time::ZERO.plus_ms(ms),
        done: Vec::new(),
    }
}

fn send_to_verifier(v: u32) -> Output {
    Output::Send {
        to: NodeId::Verifier(VerifierId(v)),
        msg: Message::QueryCommitted,
    }
}

#[test]
fn effects_go_out_in_order_and_the_next_wake_up_is_asked_once() {
    let mut driver = Driver::new(Script {
        outputs: vec![
            send_to_verifier(0),
            Output::Exec(ExecCommand::Rollback { to: BatchSeq(3) }),
            send_to_verifier(1),
        ],
        deadline: Some(Time::ZERO.plus_ms(5)),
        ..Script::default()
    });
    let mut world = io(0);
    driver.start(&mut world);
    assert_eq!(
        world.done,
        vec![
            Done::Send(NodeId::Verifier(VerifierId(0))),
            Done::Exec(BatchSeq(3)),
            Done::Send(NodeId::Verifier(VerifierId(1))),
            Done::Wake(Time::ZERO.plus_ms(5)),
        ],
        "sends and commands in the logic's order, then the wake-up"
    );
    let mut world = io(1);
    driver.flush(&mut world);
    assert_eq!(world.done, vec![], "the wake-up asked for still stands");
}

#[test]
fn a_durable_memory_is_handed_over_before_any_effect_that_depends_on_it() {
    let config = eve_types::ClusterConfig::new(eve_types::ReplicationMode::Eve { u: 1, r: 0 })
        .validate()
        .unwrap();
    let memory = eve_agreement::Verifier::new(VerifierId(0), config).memory();
    let mut driver = Driver::new(Script {
        outputs: vec![send_to_verifier(1)],
        memory: Some(memory),
        ..Script::default()
    });
    let mut world = io(0);
    driver.start(&mut world);
    assert_eq!(
        world.done,
        vec![
            Done::Persist(BatchSeq(0)),
            Done::Send(NodeId::Verifier(VerifierId(1)))
        ],
        "the memory first, then the message"
    );
    driver.logic_mut().outputs.push(send_to_verifier(2));
    let mut world = io(1);
    driver.flush(&mut world);
    assert_eq!(
        world.done,
        vec![Done::Send(NodeId::Verifier(VerifierId(2)))],
        "an unchanged memory is not handed over again"
    );
}

#[test]
fn a_timeout_is_handled_only_when_due() {
    let mut driver = Driver::new(Script {
        deadline: Some(Time::ZERO.plus_ms(5)),
        ..Script::default()
    });
    driver.start(&mut io(0));
    let mut early = io(3);
    driver.on_wake(&mut early).unwrap();
    assert_eq!(driver.logic().timeouts, 0, "not yet due");
    let mut due = io(5);
    driver.on_wake(&mut due).unwrap();
    assert_eq!(driver.logic().timeouts, 1);
    assert_eq!(
        due.done,
        vec![Done::Wake(Time::ZERO.plus_ms(15))],
        "the next deadline is asked for"
    );
}

#[test]
fn a_logic_that_leaves_its_timeout_due_is_reported_once_and_not_woken_again() {
    let mut driver = Driver::new(Script {
        deadline: Some(Time::ZERO.plus_ms(5)),
        sticky: true,
        ..Script::default()
    });
    driver.start(&mut io(0));
    let mut due = io(5);
    assert_eq!(
        driver.on_wake(&mut due),
        Err(TimerStillDue {
            node: NodeId::Replica(ReplicaId(0)),
            at: Time::ZERO.plus_ms(5),
        })
    );
    assert_eq!(due.done, vec![], "no wake-up asked: time would stand still");
    let mut later = io(6);
    assert_eq!(driver.on_wake(&mut later), Ok(()), "reported once");
    assert_eq!(driver.logic().timeouts, 1, "and not handled again");
}

#[test]
fn a_replaced_logic_asks_for_its_own_wake_up() {
    let mut driver = Driver::new(Script {
        deadline: Some(Time::ZERO.plus_ms(50)),
        ..Script::default()
    });
    driver.start(&mut io(0));
    let mut world = io(1);
    driver.replace(
        Script {
            deadline: Some(Time::ZERO.plus_ms(80)),
            ..Script::default()
        },
        &mut world,
    );
    assert_eq!(
        world.done,
        vec![Done::Wake(Time::ZERO.plus_ms(80))],
        "a restart forgets the old incarnation's wake-up"
    );
}
