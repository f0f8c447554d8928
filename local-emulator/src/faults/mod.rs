//! Fault injection: failures set on purpose, each scoped to a connection,
//! a user, a function or everything, for a count of occurrences or a
//! duration (or both: whichever ends first), listed and removable while
//! active. The places that can fail ask [`Faults::take`] at the moment
//! they would act; a matching fault is counted as a hit and, with a count,
//! used up.
//!
//! Driven by the HTTP API in `api` (`/_roomcast/faults`) and by
//! `roomcast fault` on the command line.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub(crate) mod store;

/// What goes wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FaultKind {
    /// PostToConnection answers this status instead of delivering: 410
    /// (`GoneException`; the connection is cut too, since a 410 means it
    /// is gone), 429 (`LimitExceededException`) or 413
    /// (`PayloadTooLargeException`).
    PostStatus {
        /// 410, 429 or 413.
        status: u16,
    },
    /// PostToConnection waits this long before it is served.
    PostStall {
        /// Milliseconds.
        ms: u64,
    },
    /// The connection's `$disconnect` is not invoked when it closes (API
    /// Gateway's is best-effort), so TTLs and Gone cleanup must converge.
    DropDisconnect,
    /// The invocation fails with an error (`errorType`
    /// `Roomcast.InjectedFault`) without running the function.
    InvokeError,
    /// The invocation times out (as `Sandbox.Timedout`) without running
    /// the function.
    InvokeTimeout,
    /// Lambda refuses the invocation as if the function's reserved
    /// concurrency were 0: the Invoke API answers 429
    /// `TooManyRequestsException`, API Gateway treats it as an integration
    /// failure, and an asynchronous event waits and is tried again. The
    /// function does not run.
    InvokeThrottle,
    /// The process serving the invocation is killed (SIGKILL) `afterMs`
    /// after its runtime took the event from `/next`: Lambda's
    /// `Runtime.ExitError`, and the next invocation starts cold. Strikes
    /// only functions run as processes (an in-process function has no
    /// process of its own to kill).
    InvokeCrash {
        /// Milliseconds between the runtime taking the event and the kill
        /// (0 unless given).
        #[serde(default, rename = "afterMs")]
        after_ms: u64,
    },
    /// The emulator's idle and maximum-duration timers run `factor` times
    /// faster, so a test sees the 10-minute and 2-hour closes in seconds.
    /// Lasts until removed or its `durationMs`; takes no scope or count.
    FastClock {
        /// 2 to 100000.
        factor: u32,
    },
    /// The store answers with an error instead of acting (the store that
    /// functions in the emulator's process share: memory or DynamoDB).
    /// Applies to every call; takes no scope.
    StoreError {
        /// `throttling` or `unavailable`.
        error: StoreFault,
    },
}

/// How an injected store error reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreFault {
    /// As DynamoDB's `ProvisionedThroughputExceededException`/throttling.
    Throttling,
    /// As a store that cannot be reached.
    Unavailable,
}

/// Whom a fault applies to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scope {
    /// Only this connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// Only this user's connections (the authorizer's `principalId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Only invocations of this function (logical id or name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
}

/// What a place that can fail knows about the act at hand.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Subject<'a> {
    pub(crate) connection: Option<&'a str>,
    pub(crate) user: Option<&'a str>,
    pub(crate) function: Option<&'a str>,
}

/// Where a fault can strike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Point {
    /// A PostToConnection.
    Post,
    /// A connection's `$disconnect`.
    Disconnect,
    /// A function invocation.
    Invoke,
    /// A function invocation served by a process.
    Process,
    /// A store call.
    Store,
    /// The socket timers (never taken: read as a factor).
    Clock,
}

impl FaultKind {
    fn point(&self) -> Point {
        match self {
            Self::PostStatus { .. } | Self::PostStall { .. } => Point::Post,
            Self::DropDisconnect => Point::Disconnect,
            Self::InvokeError | Self::InvokeTimeout | Self::InvokeThrottle => Point::Invoke,
            Self::InvokeCrash { .. } => Point::Process,
            Self::StoreError { .. } => Point::Store,
            Self::FastClock { .. } => Point::Clock,
        }
    }

    /// Checks the arguments; the message says what is allowed.
    fn check(&self) -> Result<(), String> {
        match self {
            Self::PostStatus { status } if !matches!(status, 410 | 413 | 429) => Err(format!(
                "post-status takes status 410, 413 or 429, not {status}"
            )),
            Self::PostStall { ms } if *ms > 120_000 => {
                Err("post-stall takes at most 120000 ms".into())
            }
            Self::InvokeCrash { after_ms } if *after_ms > 900_000 => Err(
                "invoke-crash takes afterMs of at most 900000 (Lambda's longest timeout)".into(),
            ),
            Self::FastClock { factor } if !(2..=100_000).contains(factor) => Err(format!(
                "fast-clock takes a factor of 2 to 100000, not {factor}"
            )),
            _ => Ok(()),
        }
    }
}

impl Scope {
    fn matches(&self, s: &Subject<'_>) -> bool {
        let field = |want: &Option<String>, got: Option<&str>| {
            want.as_deref().is_none_or(|w| got == Some(w))
        };
        field(&self.connection, s.connection)
            && field(&self.user, s.user)
            && field(&self.function, s.function)
    }
}

/// A fault as the API takes it: `{"fault": "post-status", "status": 410,
/// "scope": {"user": "bob"}, "count": 1, "durationMs": 5000}`.
#[derive(Clone, Debug)]
pub struct FaultRequest {
    /// What goes wrong.
    pub kind: FaultKind,
    /// Whom; everything when absent.
    pub scope: Scope,
    /// How many occurrences; unlimited when absent.
    pub count: Option<u32>,
    /// For how long, ms; until removed when absent.
    pub duration_ms: Option<u64>,
}

impl FaultRequest {
    /// Reads a request; `Err` says what is wrong (an unknown fault, field
    /// or scope, a bad value).
    pub fn from_json(v: serde_json::Value) -> Result<Self, String> {
        let serde_json::Value::Object(mut fields) = v else {
            return Err("a fault is a JSON object".into());
        };
        let scope = match fields.remove("scope") {
            None => Scope::default(),
            Some(s) => serde_json::from_value(s).map_err(|e| format!("scope: {e}"))?,
        };
        let count = match fields.remove("count") {
            None => None,
            Some(c) => Some(serde_json::from_value(c).map_err(|e| format!("count: {e}"))?),
        };
        let duration_ms = match fields.remove("durationMs") {
            None => None,
            Some(d) => Some(serde_json::from_value(d).map_err(|e| format!("durationMs: {e}"))?),
        };
        let kind: FaultKind = serde_json::from_value(serde_json::Value::Object(fields.clone()))
            .map_err(|e| format!("fault: {e}"))?;
        // serde lets a fault without arguments take any: refuse what the
        // fault does not have, as for the others.
        if let Ok(serde_json::Value::Object(known)) = serde_json::to_value(&kind)
            && let Some(unknown) = fields.keys().find(|k| !known.contains_key(*k))
        {
            return Err(format!("fault: unknown field `{unknown}`"));
        }
        Ok(Self {
            kind,
            scope,
            count,
            duration_ms,
        })
    }
}

/// An active fault, as the API lists it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveFault {
    /// Its id, for removal.
    pub id: u64,
    /// What goes wrong.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Whom.
    pub scope: Scope,
    /// Occurrences left; absent: unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u32>,
    /// Ms left; absent: until removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_ms: Option<u64>,
    /// Times it struck.
    pub hits: u64,
}

struct Entry {
    id: u64,
    kind: FaultKind,
    scope: Scope,
    remaining: Option<u32>,
    until: Option<Instant>,
    hits: u64,
}

/// The emulator's active faults.
pub(crate) struct Faults {
    inner: Mutex<Inner>,
    /// How many are active, read without the lock: with none, the places
    /// that can fail (a store call among them) pay one atomic read.
    active: std::sync::atomic::AtomicUsize,
    /// Bumped when the clock's factor may have changed, so sockets
    /// recompute their timers.
    clock: tokio::sync::watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            active: std::sync::atomic::AtomicUsize::default(),
            clock: tokio::sync::watch::Sender::new(0),
        }
    }
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    active: Vec<Entry>,
    /// Hits of faults since start, by fault name, for `/metrics`.
    hits: std::collections::BTreeMap<&'static str, u64>,
}

impl Faults {
    /// Adds a fault; `Err` says what is wrong with the request.
    pub(crate) fn add(&self, r: FaultRequest) -> Result<ActiveFault, String> {
        r.kind.check()?;
        if r.count == Some(0) {
            return Err("count must be at least 1".into());
        }
        if r.kind.point() == Point::Store && r.scope != Scope::default() {
            return Err("store-error applies to every store call: give no scope".into());
        }
        if r.kind.point() == Point::Clock && (r.scope != Scope::default() || r.count.is_some()) {
            return Err(
                "fast-clock applies to every connection for a duration: give no scope or count"
                    .into(),
            );
        }
        let mut g = self.lock();
        g.next_id += 1;
        let entry = Entry {
            id: g.next_id,
            kind: r.kind,
            scope: r.scope,
            remaining: r.count,
            until: r
                .duration_ms
                .map(|ms| Instant::now() + Duration::from_millis(ms)),
            hits: 0,
        };
        let shown = view(&entry, Instant::now());
        g.active.push(entry);
        self.count(&g);
        Ok(shown)
    }

    /// Removes one fault; whether it existed.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let mut g = self.lock();
        let before = g.active.len();
        g.active.retain(|e| e.id != id);
        self.count(&g);
        g.active.len() != before
    }

    /// Removes every fault; how many there were.
    pub(crate) fn clear(&self) -> usize {
        let mut g = self.lock();
        let n = std::mem::take(&mut g.active).len();
        self.count(&g);
        n
    }

    fn count(&self, g: &Inner) {
        let before = self
            .active
            .swap(g.active.len(), std::sync::atomic::Ordering::Relaxed);
        if before != g.active.len() {
            self.clock.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// How many times faster the socket timers run now (1: real time).
    pub(crate) fn clock_factor(&self) -> u32 {
        if self.active.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            return 1;
        }
        let now = Instant::now();
        self.lock()
            .active
            .iter()
            .filter(|e| e.until.is_none_or(|u| u > now))
            .filter_map(|e| match e.kind {
                FaultKind::FastClock { factor } => Some(factor),
                _ => None,
            })
            .max()
            .unwrap_or(1)
    }

    /// Wakes when the clock's factor may have changed.
    pub(crate) fn clock_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.clock.subscribe()
    }

    /// The active faults.
    pub(crate) fn list(&self) -> Vec<ActiveFault> {
        let now = Instant::now();
        let mut g = self.lock();
        g.active.retain(|e| e.until.is_none_or(|u| u > now));
        self.count(&g);
        g.active.iter().map(|e| view(e, now)).collect()
    }

    /// Whether no fault is armed: callers skip building a subject.
    pub(crate) fn none_armed(&self) -> bool {
        self.active.load(std::sync::atomic::Ordering::Relaxed) == 0
    }

    /// The fault that strikes at `point` for `subject`, if any: the oldest
    /// match, counted and (with a count) used up.
    pub(crate) fn take(&self, point: Point, subject: Subject<'_>) -> Option<FaultKind> {
        if self.none_armed() {
            return None;
        }
        let now = Instant::now();
        let mut g = self.lock();
        g.active.retain(|e| e.until.is_none_or(|u| u > now));
        self.count(&g);
        let i = g
            .active
            .iter()
            .position(|e| e.kind.point() == point && e.scope.matches(&subject))?;
        let e = &mut g.active[i];
        e.hits += 1;
        let kind = e.kind.clone();
        if let Some(n) = e.remaining.as_mut() {
            *n -= 1;
            if *n == 0 {
                g.active.remove(i);
                self.count(&g);
            }
        }
        *g.hits.entry(name(&kind)).or_insert(0) += 1;
        tracing::info!(
            fault = name(&kind),
            connection_id = subject.connection,
            function = subject.function,
            "injected fault"
        );
        Some(kind)
    }

    /// (active faults, hits by fault name) for `/metrics`.
    pub(crate) fn stats(&self) -> (usize, Vec<(&'static str, u64)>) {
        let g = self.lock();
        (
            g.active.len(),
            g.hits.iter().map(|(k, v)| (*k, *v)).collect(),
        )
    }

    /// The Prometheus lines for `/metrics`.
    pub(crate) fn render_metrics(&self) -> String {
        use std::fmt::Write;
        let (active, hits) = self.stats();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP roomcast_faults_active Injected faults now active."
        );
        let _ = writeln!(out, "# TYPE roomcast_faults_active gauge");
        let _ = writeln!(out, "roomcast_faults_active {active}");
        let _ = writeln!(
            out,
            "# HELP roomcast_fault_hits_total Times an injected fault struck, by fault."
        );
        let _ = writeln!(out, "# TYPE roomcast_fault_hits_total counter");
        for (fault, n) in hits {
            let _ = writeln!(out, "roomcast_fault_hits_total{{fault=\"{fault}\"}} {n}");
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding it cannot leave the list half-written.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Every fault's name, as the API takes it in `fault` (for help texts).
pub const KINDS: &[&str] = &[
    "post-status",
    "post-stall",
    "drop-disconnect",
    "invoke-error",
    "invoke-timeout",
    "invoke-throttle",
    "invoke-crash",
    "store-error",
    "fast-clock",
];

fn name(kind: &FaultKind) -> &'static str {
    match kind {
        FaultKind::PostStatus { .. } => "post-status",
        FaultKind::PostStall { .. } => "post-stall",
        FaultKind::DropDisconnect => "drop-disconnect",
        FaultKind::InvokeError => "invoke-error",
        FaultKind::InvokeTimeout => "invoke-timeout",
        FaultKind::InvokeThrottle => "invoke-throttle",
        FaultKind::InvokeCrash { .. } => "invoke-crash",
        FaultKind::StoreError { .. } => "store-error",
        FaultKind::FastClock { .. } => "fast-clock",
    }
}

fn view(e: &Entry, now: Instant) -> ActiveFault {
    ActiveFault {
        id: e.id,
        kind: e.kind.clone(),
        scope: e.scope.clone(),
        remaining: e.remaining,
        expires_in_ms: e
            .until
            .map(|u| u.saturating_duration_since(now).as_millis() as u64),
        hits: e.hits,
    }
}

#[cfg(test)]
mod tests;
