//! One execution environment's side of the Runtime API: the invocation
//! waiting for `/next`, the ones handed out and not yet answered, and how
//! init went. The HTTP handlers in `runtime_api` and the instance that
//! feeds invocations in both talk to it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use crate::lambda::registry::InvokeError;

/// How many answered request ids a sandbox remembers, to tell a second
/// answer (403) from an id it never issued (400).
const ANSWERED_KEPT: usize = 64;

/// One invocation: the work `/next` hands out, and where its answer goes.
#[derive(Debug)]
pub(crate) struct Invocation {
    pub(crate) work: Work,
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// What the runtime answered.
#[derive(Debug)]
pub(crate) enum Reply {
    /// `/response`: the payload.
    Response(Bytes),
    /// `/error`: the function's error.
    Error(InvokeError),
}

/// What `/next` hands the runtime: the event and its headers' values.
#[derive(Debug)]
pub(crate) struct Work {
    pub(crate) request_id: String,
    pub(crate) event: Bytes,
    /// Epoch ms by which the function must answer.
    pub(crate) deadline_ms: i64,
    /// X-Ray's `Root=1-…;Sampled=0`.
    pub(crate) trace_id: String,
    /// `X-Amz-Client-Context` of an Invoke API call, decoded JSON.
    pub(crate) client_context: Option<String>,
    /// The caller's Cognito identity, JSON.
    pub(crate) cognito_identity: Option<String>,
}

/// Why an answer was refused. Each maps to the Runtime API's status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AnswerError {
    /// The id was never handed out by this sandbox (400 `InvalidRequestID`):
    /// the runtime has a bug; nothing else is affected.
    #[error("unknown request id {0}")]
    Unknown(String),
    /// The id was already answered (403 `InvalidStateTransition`).
    #[error("request id {0} was already answered")]
    AlreadyAnswered(String),
    /// `/init/error` after init finished (403 `InvalidStateTransition`).
    #[error("init already finished")]
    InitFinished,
}

#[derive(Debug, Default)]
struct Handed {
    in_flight: HashMap<String, oneshot::Sender<Reply>>,
    answered: VecDeque<String>,
}

/// The shared state of one execution environment.
#[derive(Debug)]
pub(crate) struct Sandbox {
    /// `Lambda-Runtime-Invoked-Function-Arn`.
    pub(crate) function_arn: String,
    queue: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    handed: Mutex<Handed>,
    /// Set by the first `/next`: init is over.
    ready: watch::Sender<bool>,
    /// Set by `/init/error`.
    init_error: watch::Sender<Option<InvokeError>>,
    /// Bumped each time `/next` hands an invocation out.
    taken: watch::Sender<u64>,
}

impl Sandbox {
    /// A sandbox and the sender that feeds it invocations.
    pub(crate) fn new(function_arn: String) -> (Self, mpsc::Sender<Invocation>) {
        // One slot: an instance runs one invocation at a time, as in Lambda.
        let (tx, rx) = mpsc::channel(1);
        let sandbox = Self {
            function_arn,
            queue: tokio::sync::Mutex::new(rx),
            handed: Mutex::default(),
            ready: watch::Sender::new(false),
            init_error: watch::Sender::new(None),
            taken: watch::Sender::new(0),
        };
        (sandbox, tx)
    }

    /// `/next`: waits for an invocation. `None` when the instance is being
    /// torn down (nothing will ever come).
    pub(crate) async fn next(&self) -> Option<Work> {
        self.ready.send_replace(true);
        let Invocation { work, reply } = self.queue.lock().await.recv().await?;
        self.lock().in_flight.insert(work.request_id.clone(), reply);
        self.taken.send_modify(|n| *n = n.wrapping_add(1));
        Some(work)
    }

    /// `/response` or `/error` for `request_id`.
    pub(crate) fn answer(&self, request_id: &str, reply: Reply) -> Result<(), AnswerError> {
        let mut handed = self.lock();
        let Some(sender) = handed.in_flight.remove(request_id) else {
            return Err(if handed.answered.iter().any(|id| id == request_id) {
                AnswerError::AlreadyAnswered(request_id.to_owned())
            } else {
                AnswerError::Unknown(request_id.to_owned())
            });
        };
        if handed.answered.len() == ANSWERED_KEPT {
            handed.answered.pop_front();
        }
        handed.answered.push_back(request_id.to_owned());
        // The caller may have given up (timeout); the answer is then moot.
        let _ = sender.send(reply);
        Ok(())
    }

    /// Changes each time `/next` hands an invocation out.
    pub(crate) fn taken(&self) -> watch::Receiver<u64> {
        self.taken.subscribe()
    }

    /// `/init/error`: init failed; allowed only before the first `/next`.
    pub(crate) fn fail_init(&self, error: InvokeError) -> Result<(), AnswerError> {
        if *self.ready.borrow() {
            return Err(AnswerError::InitFinished);
        }
        self.init_error.send_replace(Some(error));
        Ok(())
    }

    /// Whether the runtime has asked for work at least once.
    pub(crate) fn ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// The init error, once `/init/error` reports one.
    pub(crate) fn init_error(&self) -> watch::Receiver<Option<InvokeError>> {
        self.init_error.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Handed> {
        // Nothing here panics while holding the lock; recover regardless.
        self.handed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(id: &str) -> (Invocation, oneshot::Receiver<Reply>) {
        let (reply, rx) = oneshot::channel();
        let work = Work {
            request_id: id.into(),
            event: Bytes::from_static(b"{}"),
            deadline_ms: 1,
            trace_id: "Root=1-0-0".into(),
            client_context: None,
            cognito_identity: None,
        };
        (Invocation { work, reply }, rx)
    }

    #[tokio::test]
    async fn an_answer_reaches_its_caller_once_and_strangers_are_refused() {
        let (sandbox, tx) = Sandbox::new("arn".into());
        let (inv, rx) = invocation("a");
        tx.send(inv).await.unwrap();
        let next = sandbox.next().await.unwrap();
        assert_eq!(next.request_id, "a");
        assert_eq!(
            sandbox.answer("b", Reply::Response(Bytes::new())),
            Err(AnswerError::Unknown("b".into()))
        );
        sandbox
            .answer("a", Reply::Response(Bytes::from_static(b"1")))
            .unwrap();
        assert!(matches!(rx.await, Ok(Reply::Response(b)) if b == "1"));
        assert_eq!(
            sandbox.answer("a", Reply::Response(Bytes::new())),
            Err(AnswerError::AlreadyAnswered("a".into()))
        );
    }

    #[tokio::test]
    async fn init_errors_are_refused_after_the_first_next() {
        let (sandbox, tx) = Sandbox::new("arn".into());
        let err = InvokeError {
            error_type: "Runtime.X".into(),
            error_message: "m".into(),
        };
        sandbox.fail_init(err.clone()).unwrap();
        assert_eq!(*sandbox.init_error().borrow(), Some(err.clone()));
        let (inv, _rx) = invocation("a");
        tx.send(inv).await.unwrap();
        sandbox.next().await.unwrap();
        assert_eq!(sandbox.fail_init(err), Err(AnswerError::InitFinished));
    }
}
