//! The resolution engine: `resolve(base, request)` (SPEC §4.2).
//!
//! Device selection, path parsing, chains, the key → function rules,
//! HashPaths, the depth limit and panic containment live here, as methods of
//! [`Context`]. The shortcuts `get`, `find`, `resolve_as` and `set` are built
//! on them.

use std::borrow::Cow;
use std::future::Future;
use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context as TaskContext, Poll};

use futures::future::BoxFuture;
use hb_message::hashpath::{self, hashpath_of_value};
use hb_message::{Key, Message, MessageError, SetMode, Update, Value};

use crate::config::HashpathMode;
use crate::context::Context;
use crate::device::Outcome;
use crate::error::ResolveError;
use crate::guard::{stack_used, Anchored};
use crate::keys;
use crate::message_device;
use crate::path::{path_request, segments, PATH};
use crate::registry::Registered;

/// The key holding a message's device name.
pub const DEVICE: &str = keys::names::DEVICE;

/// What a chain step resolves on: a message, or a list (answered by
/// `message@1.0` as a message keyed `"1"`, `"2"`, …).
enum Subject {
    Message(Message),
    List(Value),
}

/// Who answers a step.
enum Target<'r> {
    /// `message@1.0`, called by reference (no copy of the base).
    MessageDevice,
    /// A registered device.
    Device(&'r Registered),
}

/// A request with what every resolution of it needs, worked out once: its
/// path segments and its part of HashPaths (SPEC §2.7). A stack resolves
/// one request on each of its devices, so it prepares it once for all.
pub(crate) struct PreparedRequest<'r> {
    request: &'r Message,
    /// `segments(request)`; an error is reported by each resolution, after
    /// its depth check, as when the path is parsed there.
    segments: Result<Vec<Key>, ResolveError>,
    /// `request_part(request)`, once a step has needed it.
    hashpath_part: OnceLock<String>,
}

impl<'r> PreparedRequest<'r> {
    pub(crate) fn new(request: &'r Message) -> PreparedRequest<'r> {
        PreparedRequest {
            request,
            segments: segments(request),
            hashpath_part: OnceLock::new(),
        }
    }
}

/// The request of one step, and where its part of the HashPath comes from.
#[derive(Clone, Copy)]
struct StepRequest<'a> {
    message: &'a Message,
    /// The prepared request's shared part, when `message` is that request.
    shared_part: Option<&'a OnceLock<String>>,
}

impl<'a> StepRequest<'a> {
    /// The request's part of the HashPath, computed at most once per
    /// prepared request.
    fn hashpath_part(self) -> Result<Cow<'a, str>, MessageError> {
        let Some(shared) = self.shared_part else {
            return hashpath::request_part(self.message).map(Cow::Owned);
        };
        if let Some(part) = shared.get() {
            return Ok(Cow::Borrowed(part));
        }
        let part = hashpath::request_part(self.message)?;
        Ok(Cow::Borrowed(shared.get_or_init(|| part)))
    }
}

/// A failed resolution, with the base handed back when the caller asked to
/// keep it and it was still available.
pub(crate) struct Failure {
    pub(crate) error: ResolveError,
    pub(crate) base: Option<Message>,
}

impl From<ResolveError> for Failure {
    fn from(error: ResolveError) -> Failure {
        Failure { error, base: None }
    }
}

impl From<hb_message::MessageError> for Failure {
    fn from(error: hb_message::MessageError) -> Failure {
        Failure {
            error: error.into(),
            base: None,
        }
    }
}

impl Context {
    /// Resolves `request` on `base` (SPEC §4.2): picks the base's device
    /// (`message@1.0` when it has none), runs each segment of
    /// `request.path` as a step of a chain, and records HashPaths.
    ///
    /// The base is handed over (devices modify it in place); clone it if you
    /// need it afterwards.
    pub async fn resolve(&self, base: Message, request: &Message) -> Result<Outcome, ResolveError> {
        let request = PreparedRequest::new(request);
        self.run(Subject::Message(base), &request, None, false)
            .await
            .map_err(|f| f.error)
    }

    /// Resolves `request` on `base` with `device` in place of the base's own
    /// device for the first step. The base itself is not modified; the
    /// result is whatever that device returns.
    pub async fn resolve_as(
        &self,
        device: &str,
        base: Message,
        request: &Message,
    ) -> Result<Outcome, ResolveError> {
        let registered = self.registry().lookup(device)?;
        let request = PreparedRequest::new(request);
        self.run(Subject::Message(base), &request, Some(registered), false)
            .await
            .map_err(|f| f.error)
    }

    /// Resolves `path` on `base`: the message or raw value found, or
    /// `default` on any error (HyperBEAM's `hb_ao:get/4`). Skip and pass
    /// results give their message.
    pub async fn get(&self, path: &str, base: &Message, default: Value) -> Value {
        match self.resolve(base.clone(), &path_request(path)).await {
            Ok(outcome) => outcome.into_value(),
            Err(_) => default,
        }
    }

    /// Resolves `path` on `base`: `Ok(None)` when not found, the error for
    /// any other failure.
    pub async fn find(&self, path: &str, base: &Message) -> Result<Option<Value>, ResolveError> {
        match self.resolve(base.clone(), &path_request(path)).await {
            Ok(outcome) => Ok(Some(outcome.into_value())),
            Err(ResolveError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Applies `updates` through the base's device, one `set` call per
    /// top-level key; `a/b` keys are deep-set, each intermediate level with
    /// `set-mode: explicit` (SPEC §4.2 "Shortcuts"). Runs with the HashPath
    /// ignored, as an internal call.
    pub async fn set(
        &self,
        base: Message,
        updates: &[(Key, Update)],
    ) -> Result<Message, ResolveError> {
        let ctx = self.with_hashpath(HashpathMode::Ignore);
        let mut msg = base;
        for (key, update) in updates {
            let segments: Vec<&str> = key.as_str().split('/').filter(|s| !s.is_empty()).collect();
            if segments.is_empty() {
                continue;
            }
            msg = ctx.deep_set(msg, &segments, update).await?;
        }
        Ok(msg)
    }

    /// One update at a `/` path, through the devices of each level.
    fn deep_set<'a>(
        &'a self,
        base: Message,
        segments: &'a [&'a str],
        update: &'a Update,
    ) -> BoxFuture<'a, Result<Message, ResolveError>> {
        Box::pin(async move {
            let (head, rest) = match segments.split_first() {
                Some((head, rest)) => (*head, rest),
                None => return Ok(base),
            };
            if rest.is_empty() {
                return self
                    .device_set(base, head, update, SetMode::DeepMerge)
                    .await;
            }
            let inner = match base.get(head) {
                Some(Value::Message(m)) => m.clone(),
                // Nothing to remove below a missing or non-message value.
                _ if *update == Update::Unset => return Ok(base),
                _ => Message::new(),
            };
            let inner = self.deep_set(inner, rest, update).await?;
            self.device_set(
                base,
                head,
                &Update::Value(Value::Message(inner)),
                SetMode::Explicit,
            )
            .await
        })
    }

    /// One `set` call for one top-level key.
    async fn device_set(
        &self,
        base: Message,
        key: &str,
        update: &Update,
        mode: SetMode,
    ) -> Result<Message, ResolveError> {
        let key = Key::new(key).map_err(|e| ResolveError::invalid_input("set", e.to_string()))?;
        // `set` ignores `path`; `set_path` and `remove` change it.
        let request = if key.as_str() == PATH {
            match update {
                Update::Value(v) => message_device::set_path_request(v.clone()),
                Update::Unset => message_device::remove_request(std::slice::from_ref(&key)),
            }
        } else {
            message_device::set_request(&[(key.clone(), update.clone())], mode)
        };
        let device = base
            .get_text(DEVICE)
            .unwrap_or(message_device::NAME)
            .to_string();
        match self.resolve(base, &request).await? {
            Outcome::Ok(m) => Ok(m),
            other => Err(ResolveError::UnexpectedOutcome {
                device,
                key: "set".into(),
                expected: "ok",
                got: other.kind(),
            }),
        }
    }

    /// [`resolve`](Context::resolve) for a single-segment request that
    /// hands the base back on failure when it can (without copying it when
    /// `message@1.0` answers). Stacks use it to skip devices that lack a key,
    /// resolving one prepared request on each device.
    pub(crate) fn resolve_keeping<'a>(
        &'a self,
        base: Message,
        request: &'a PreparedRequest<'a>,
    ) -> Anchored<BoxFuture<'a, Result<Outcome, Failure>>> {
        self.run(Subject::Message(base), request, None, true)
    }

    /// [`run_chain`](Context::run_chain), boxed by a plain function.
    ///
    /// Every resolution goes through here, so that the futures of one
    /// nesting level hold only a pointer to the next level's: unoptimised
    /// builds give each poll frame room for copies of the futures it
    /// creates, and without the box every frame of a level would hold the
    /// whole nested future. The box is also where the stack budget of
    /// [`guard`](crate::guard) is anchored.
    fn run<'a>(
        &'a self,
        subject: Subject,
        prepared: &'a PreparedRequest<'a>,
        forced: Option<&'a Registered>,
        keep: bool,
    ) -> Anchored<BoxFuture<'a, Result<Outcome, Failure>>> {
        let single = matches!(&prepared.segments, Ok(keys) if keys.len() == 1);
        Anchored::new(if single {
            Box::pin(self.run_one(subject, prepared, forced, keep))
        } else {
            Box::pin(self.run_chain(subject, prepared, forced, keep))
        })
    }

    /// [`run_chain`](Context::run_chain) for a path of one segment, the
    /// common case (every device of a stack, every nested call), in a
    /// smaller future and poll frame.
    async fn run_one(
        &self,
        subject: Subject,
        prepared: &PreparedRequest<'_>,
        forced: Option<&Registered>,
        keep: bool,
    ) -> Result<Outcome, Failure> {
        let chain = match self.begin(prepared, forced, keep) {
            Ok(chain) => chain,
            Err(error) => return Err(give_back(subject, keep, error)),
        };
        let nested = self.nested();
        let message = chain.request();
        let request = chain.step_request(&message, matches!(message, Cow::Borrowed(_)));
        nested
            .step(subject, chain.key(), request, forced, keep)
            .await
    }

    /// The chain: one step per path segment (SPEC §4.2 "Chains").
    ///
    /// Its poll frame is part of every nesting level reached through a
    /// path of several segments, so the work around
    /// the await lives in plain functions ([`Context::begin`],
    /// [`Chain::request`], [`Chain::advance`]) whose frames are gone by the
    /// time the next level runs.
    async fn run_chain(
        &self,
        subject: Subject,
        prepared: &PreparedRequest<'_>,
        forced: Option<&Registered>,
        keep: bool,
    ) -> Result<Outcome, Failure> {
        let mut chain = match self.begin(prepared, forced, keep) {
            Ok(chain) => chain,
            Err(error) => return Err(give_back(subject, keep, error)),
        };
        let nested = self.nested();
        let mut subject = subject;
        loop {
            let message = chain.request();
            let outcome = nested
                .step(
                    subject,
                    chain.key(),
                    chain.step_request(&message, matches!(message, Cow::Borrowed(_))),
                    chain.forced.take(),
                    chain.keeps_base(),
                )
                .await?;
            subject = match chain.advance(outcome)? {
                ControlFlow::Continue(next) => next,
                ControlFlow::Break(done) => return Ok(done),
            };
        }
    }

    /// The start of a chain: the limits, then the path.
    fn begin<'c>(
        &self,
        prepared: &'c PreparedRequest<'c>,
        forced: Option<&'c Registered>,
        keep: bool,
    ) -> Result<Chain<'c>, ResolveError> {
        if let Some(limit) = self.depth_limit_reached() {
            return Err(ResolveError::DepthExceeded { limit });
        }
        let keys = prepared.segments.as_ref().map_err(Clone::clone)?;
        if keys.is_empty() {
            // `segments` never returns an empty list; `Chain::key` relies
            // on at least one.
            return Err(ResolveError::InvalidPath {
                path: String::new(),
                reason: "the path is empty".into(),
            });
        }
        Ok(Chain {
            prepared,
            keys,
            index: 0,
            forced,
            keep,
        })
    }

    /// The limit to report when this resolution may not start: `max_depth`
    /// when reached, or the current depth when the stack budget is spent.
    fn depth_limit_reached(&self) -> Option<usize> {
        let config = self.config();
        if self.depth() >= config.max_depth {
            return Some(config.max_depth);
        }
        let used = stack_used();
        if used > config.max_stack_bytes {
            // Debug, not warn: a client can send such nesting at will.
            tracing::debug!(
                depth = self.depth(),
                used,
                budget = config.max_stack_bytes,
                "resolution stack budget spent"
            );
            return Some(self.depth());
        }
        None
    }

    /// The device a message names: `message@1.0` when it has none.
    fn target_of(&self, base: &Message) -> Result<Target<'_>, ResolveError> {
        match base.get_key(&keys::DEVICE) {
            None => Ok(Target::MessageDevice),
            Some(Value::Text(name)) => {
                let r = self.registry().lookup(name)?;
                Ok(if r.is_message_device {
                    Target::MessageDevice
                } else {
                    Target::Device(r)
                })
            }
            Some(other) => Err(ResolveError::InvalidDeviceName {
                name: format!("<{}>", other.type_name()),
                reason: "`device` must be text",
            }),
        }
    }

    /// One step: `key` on `subject`, with `self` one level below the caller.
    ///
    /// A plain function returning a hand-written future: everything but
    /// the device call runs here or in [`StepFuture::poll`], whose frames
    /// are small, since a step's frames nest once per resolution level.
    fn step<'a>(
        &'a self,
        subject: Subject,
        key: &'a Key,
        request: StepRequest<'a>,
        forced: Option<&'a Registered>,
        keep: bool,
    ) -> StepFuture<'a> {
        match self.prepare(subject, key, request, forced, keep) {
            Ok(Prepared::Done(outcome)) => StepFuture::Done(Some(Ok(outcome))),
            Err(failure) => StepFuture::Done(Some(Err(failure))),
            Ok(Prepared::Call(mut call)) => {
                let future = call.start(key, request.message, self);
                StepFuture::Call {
                    call,
                    future,
                    key,
                    request,
                }
            }
        }
    }

    /// Everything of a step before a device call: picks who answers, and
    /// answers at once when it is `message@1.0`.
    fn prepare<'r>(
        &'r self,
        subject: Subject,
        key: &Key,
        request: StepRequest<'_>,
        forced: Option<&'r Registered>,
        keep: bool,
    ) -> Result<Prepared<'r>, Failure> {
        let update = self.config().hashpath == HashpathMode::Update;
        let base = match subject {
            Subject::List(list) => {
                let outcome = catch_sync(key, || {
                    message_device::dispatch_list(key, &list, request.message, self)
                })?;
                return finish(outcome, update.then(|| hashpath_of_value(&list)), request)
                    .map(Prepared::Done)
                    .map_err(Failure::from);
            }
            Subject::Message(m) => m,
        };
        let target = match forced {
            Some(r) if r.is_message_device => Ok(Target::MessageDevice),
            Some(r) => Ok(Target::Device(r)),
            None => self.target_of(&base),
        };
        let target = match target {
            Ok(t) => t,
            Err(error) => {
                return Err(Failure {
                    error,
                    base: keep.then_some(base),
                })
            }
        };
        let (registered, may_decline) = match target {
            Target::Device(r) => {
                // The device's own code, like its call: a panic is caught.
                let dynamic = match catch_panic(r.device.as_ref(), key, || r.device.info_for(&base))
                {
                    Ok(dynamic) => dynamic,
                    Err(error) => return Err(Failure { error, base: None }),
                };
                let info = dynamic.as_ref().unwrap_or(&r.info);
                let route = info.route(key.as_str());
                (route.calls_device().then_some(r), info.may_decline)
            }
            Target::MessageDevice => (None, true),
        };
        let Some(registered) = registered else {
            // message@1.0 answers, by reference: the HashPath is computed
            // only for message outcomes, and the base survives a failure.
            let outcome = catch_sync(key, || {
                message_device::dispatch(key, &base, request.message, self)
            });
            let outcome = match outcome {
                Ok(o) => o,
                Err(error) => {
                    return Err(Failure {
                        error,
                        base: keep.then_some(base),
                    })
                }
            };
            let base_part = match (&outcome, update) {
                (Outcome::Ok(_), true) => Some(hashpath::base_part(&base)?),
                _ => None,
            };
            return finish(outcome, base_part, request)
                .map(Prepared::Done)
                .map_err(Failure::from);
        };
        let base_part = if update {
            Some(hashpath::base_part(&base)?)
        } else {
            None
        };
        // A copy for the caller to go on with if the device declines.
        let kept = (keep && may_decline).then(|| base.clone());
        Ok(Prepared::Call(DeviceCall {
            registered,
            base: Some(base),
            base_part,
            kept,
        }))
    }
}

/// The failure of a resolution that could not start, with the base handed
/// back when the caller keeps it.
fn give_back(subject: Subject, keep: bool, error: ResolveError) -> Failure {
    let base = match subject {
        Subject::Message(m) if keep => Some(m),
        _ => None,
    };
    Failure { error, base }
}

/// A chain in progress: its path and which segment is next.
struct Chain<'c> {
    prepared: &'c PreparedRequest<'c>,
    /// The path segments; never empty.
    keys: &'c [Key],
    /// The segment being resolved, `< keys.len()`.
    index: usize,
    /// The device forced on the first step (`resolve_as`).
    forced: Option<&'c Registered>,
    /// Whether the caller wants the base back on failure.
    keep: bool,
}

impl<'c> Chain<'c> {
    /// The segment being resolved.
    fn key(&self) -> &'c Key {
        // `index < keys.len()`: `begin` refuses an empty path and `advance`
        // ends the chain after the last segment.
        &self.keys[self.index]
    }

    /// Whether this step hands the base back on failure: only the last.
    fn keeps_base(&self) -> bool {
        self.keep && self.index + 1 == self.keys.len()
    }

    /// The request of this step: the request itself when its `path` is
    /// this segment, else a copy whose `path` is.
    fn request(&self) -> Cow<'c, Message> {
        let request = self.prepared.request;
        let key = self.key();
        if request.get_key(&keys::PATH).and_then(Value::as_text) == Some(key.as_str()) {
            Cow::Borrowed(request)
        } else {
            let mut r = request.clone();
            r.insert_key(keys::PATH.clone(), key.as_str());
            Cow::Owned(r)
        }
    }

    /// The step's request, sharing the prepared request's HashPath part when
    /// it is that request (`message` as [`request`](Chain::request) gave it).
    fn step_request<'m>(&self, message: &'m Message, is_request: bool) -> StepRequest<'m>
    where
        'c: 'm,
    {
        StepRequest {
            message,
            shared_part: is_request.then_some(&self.prepared.hashpath_part),
        }
    }

    /// After a step: the subject of the next one, or the chain's outcome.
    fn advance(&mut self, outcome: Outcome) -> Result<ControlFlow<Outcome, Subject>, Failure> {
        self.index += 1;
        let Some(next) = self.keys.get(self.index) else {
            return Ok(ControlFlow::Break(outcome));
        };
        Ok(ControlFlow::Continue(match outcome {
            Outcome::Ok(m) | Outcome::Raw(Value::Message(m)) => Subject::Message(m),
            Outcome::Raw(list @ Value::List(_)) => Subject::List(list),
            Outcome::Raw(_) => return Err(ResolveError::not_found(next.as_str()).into()),
            // Skip and pass end the chain with their message.
            other => return Ok(ControlFlow::Break(other)),
        }))
    }
}

/// A step after [`Context::prepare`].
enum Prepared<'r> {
    /// `message@1.0` answered.
    Done(Outcome),
    /// A device is to be called.
    Call(DeviceCall<'r>),
}

/// A pending device call and what its outcome needs.
struct DeviceCall<'r> {
    registered: &'r Registered,
    /// The base, until [`start`](DeviceCall::start) hands it to the device.
    base: Option<Message>,
    /// The base's part of the HashPath, when HashPaths are updated.
    base_part: Option<String>,
    /// A copy of the base, when the caller keeps it on failure.
    kept: Option<Message>,
}

impl<'r> DeviceCall<'r> {
    /// Calls the device: its future, polled in a span with panics caught.
    fn start<'a>(&mut self, key: &'a Key, request: &'a Message, ctx: &'a Context) -> CallFuture<'a>
    where
        'r: 'a,
    {
        let span = tracing::debug_span!(
            "resolve",
            device = self.registered.device.name(),
            key = key.as_str(),
            depth = ctx.depth()
        );
        // `prepare` fills the base and only `start` takes it, once.
        let base = self.base.take().unwrap_or_default();
        let device = self.registered.device.as_ref();
        // A device may run code before its future (a hand-written `call`):
        // a panic there is caught as well.
        let inner = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let _entered = span.enter();
            device.call(key, base, request, ctx)
        }))
        .map_err(Some);
        CallFuture { inner, span }
    }

    /// Turns the call's result (or its panic) into the step's outcome.
    fn finish(
        &mut self,
        result: std::thread::Result<Result<Outcome, ResolveError>>,
        key: &Key,
        request: StepRequest<'_>,
    ) -> Result<Outcome, Failure> {
        after_call(
            result,
            self.registered.device.as_ref(),
            key,
            request,
            self.base_part.take(),
            self.kept.take(),
        )
    }
}

/// The future of one step ([`Context::step`]).
enum StepFuture<'a> {
    /// Answered without a device call (`None` once taken).
    Done(Option<Result<Outcome, Failure>>),
    /// A device call in flight.
    Call {
        call: DeviceCall<'a>,
        future: CallFuture<'a>,
        key: &'a Key,
        request: StepRequest<'a>,
    },
}

impl Future for StepFuture<'_> {
    type Output = Result<Outcome, Failure>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            // A future is not polled again once it answered Ready.
            StepFuture::Done(result) => {
                Poll::Ready(result.take().expect("step polled after completion"))
            }
            StepFuture::Call {
                call,
                future,
                key,
                request,
            } => match Pin::new(future).poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(result) => Poll::Ready(call.finish(result, key, *request)),
            },
        }
    }
}

/// A device call's future, polled inside its tracing span with panics
/// caught: one small poll frame per nesting level, where the combinators
/// (`catch_unwind`, `instrument`) stacked several.
struct CallFuture<'a> {
    /// The device's future, or the panic of its `call` (`None` once
    /// taken).
    inner: Result<BoxFuture<'a, Result<Outcome, ResolveError>>, Option<PanicPayload>>,
    span: tracing::Span,
}

/// What a caught panic carries.
type PanicPayload = Box<dyn std::any::Any + Send>;

impl Future for CallFuture<'_> {
    type Output = std::thread::Result<Result<Outcome, ResolveError>>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let inner = match &mut this.inner {
            Ok(inner) => inner,
            // Taken at most once: a future is not polled after Ready.
            Err(payload) => {
                return Poll::Ready(Err(payload.take().expect("call polled after completion")))
            }
        };
        let _entered = this.span.enter();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// Turns a device call's result (or its panic) into the step's outcome.
fn after_call(
    result: Result<Result<Outcome, ResolveError>, Box<dyn std::any::Any + Send>>,
    device: &dyn crate::device::Device,
    key: &Key,
    request: StepRequest<'_>,
    base_part: Option<String>,
    kept: Option<Message>,
) -> Result<Outcome, Failure> {
    match result {
        Ok(Ok(outcome)) => finish(outcome, base_part, request).map_err(Failure::from),
        Ok(Err(error)) => Err(Failure { error, base: kept }),
        Err(payload) => {
            tracing::error!(
                device = device.name(),
                key = key.as_str(),
                panic = panic_text(payload.as_ref()),
                "device panicked"
            );
            Err(Failure {
                error: ResolveError::Panicked {
                    device: device.name().to_string(),
                    key: key.as_str().to_string(),
                },
                base: None,
            })
        }
    }
}

/// Runs a device's synchronous code (its `info_for`), turning a panic into
/// `Panicked { device, key }`.
pub(crate) fn catch_panic<T>(
    device: &dyn crate::device::Device,
    key: &Key,
    f: impl FnOnce() -> T,
) -> Result<T, ResolveError> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        tracing::error!(
            device = device.name(),
            key = key.as_str(),
            panic = panic_text(payload.as_ref()),
            "device panicked"
        );
        ResolveError::Panicked {
            device: device.name().to_string(),
            key: key.as_str().to_string(),
        }
    })
}

/// Runs `message@1.0` code, turning a panic into `Panicked`.
fn catch_sync(
    key: &Key,
    f: impl FnOnce() -> Result<Outcome, ResolveError>,
) -> Result<Outcome, ResolveError> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            tracing::error!(
                device = message_device::NAME,
                key = key.as_str(),
                panic = panic_text(payload.as_ref()),
                "device panicked"
            );
            Err(ResolveError::Panicked {
                device: message_device::NAME.into(),
                key: key.as_str().to_string(),
            })
        }
    }
}

/// The text of a panic payload, for the log.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-text panic payload>")
}

/// Sets the HashPath on `Ok(Message)` (when a base part was computed) and
/// clears it from skip and pass results, which carry none.
fn finish(
    outcome: Outcome,
    base_part: Option<String>,
    request: StepRequest<'_>,
) -> Result<Outcome, ResolveError> {
    Ok(match outcome {
        Outcome::Ok(mut m) => {
            if let Some(mut path) = base_part {
                // The base part becomes the HashPath, in its own buffer.
                hashpath::combine_in_place(&mut path, &request.hashpath_part()?)?;
                put_hashpath(&mut m, path);
            }
            Outcome::Ok(m)
        }
        Outcome::Skip(m) => Outcome::Skip(without_hashpath(m)),
        Outcome::Pass(m) => Outcome::Pass(without_hashpath(m)),
        raw @ Outcome::Raw(_) => raw,
    })
}

/// Stores `hashpath` at `priv/hashpath`, keeping other private data, in
/// place (without copying the private message as `hashpath::set_hashpath`
/// does, nor allocating keys when `priv/hashpath` exists).
fn put_hashpath(m: &mut Message, hashpath: String) {
    if let Some(Value::Message(private)) = m.get_private_key_mut(&keys::PRIV) {
        match private.get_key_mut(&keys::HASHPATH) {
            Some(slot) => *slot = Value::Text(hashpath),
            None => {
                private.insert_key(keys::HASHPATH.clone(), hashpath);
            }
        }
        return;
    }
    // No `priv`, or one that is not a message: a fresh one.
    let mut private = Message::new();
    private.insert_key(keys::HASHPATH.clone(), hashpath);
    m.insert_key(keys::PRIV.clone(), private);
}

/// Removes `priv/hashpath`, keeping other private data.
fn without_hashpath(mut m: Message) -> Message {
    let has = m
        .get_private_key(&keys::PRIV)
        .and_then(Value::as_message)
        .is_some_and(|p| p.get_key(&keys::HASHPATH).is_some());
    if has {
        if let Some(Value::Message(mut private)) = m.remove_key(&keys::PRIV) {
            private.remove_key(&keys::HASHPATH);
            if private.iter_all().next().is_some() {
                m.insert_key(keys::PRIV.clone(), private);
            }
        }
    }
    m
}
