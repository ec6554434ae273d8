//! Subscriptions that ask the same thing in the same organization share
//! one execution: the first subscriber starts it, later ones join it, and
//! each result is built once and handed to all of them. A wall of
//! dashboards watching one tree costs one execution per event, not one per
//! screen.
//!
//! This relies on what the subscription fields are: their results depend
//! on the event, the organization and the operation's own arguments, never
//! on who asks within the organization. The organization, the document,
//! the operation name and the variables together are the key.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
};

use async_graphql::Response;
use futures::{StreamExt, stream::BoxStream};
use tokio::sync::{broadcast, watch};

use crate::events::EventBus;

/// Results a slow subscriber may fall behind by before it skips to the
/// newest, as with the event bus itself.
const BACKLOG: usize = 256;

/// What makes two subscriptions the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeedKey {
    pub org_id: String,
    pub query: String,
    pub operation_name: Option<String>,
    /// The variables as JSON.
    pub variables: String,
}

/// Every running shared execution, by key.
#[derive(Clone)]
pub struct Feeds {
    running: Arc<Mutex<HashMap<FeedKey, Weak<Feed>>>>,
    events: EventBus,
}

/// One shared execution. It stops when its last subscriber goes.
struct Feed {
    results: broadcast::Sender<Message>,
    /// Whether the execution listens to the event bus yet.
    live: watch::Receiver<bool>,
    /// Whether the execution has ended; nobody joins it after that.
    ended: Arc<Mutex<bool>>,
    task: tokio::task::AbortHandle,
}

/// A result, or the end of the execution.
type Message = Option<Arc<Response>>;

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Feeds {
    /// No feeds yet; subscribers are counted on `events`.
    pub fn new(events: EventBus) -> Self {
        Feeds {
            running: Arc::default(),
            events,
        }
    }

    /// The results of the execution `key` names, joining the running one
    /// or starting `start` when there is none.
    pub fn subscribe(
        &self,
        key: FeedKey,
        start: impl FnOnce() -> BoxStream<'static, Response>,
    ) -> BoxStream<'static, Response> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let joined = running.get(&key).and_then(Weak::upgrade).and_then(|feed| {
            let ended = feed.ended.lock().unwrap_or_else(|p| p.into_inner());
            // Subscribing under the lock the execution ends under: a
            // joiner either sees the end or receives its message.
            let receiver = (!*ended).then(|| feed.results.subscribe());
            drop(ended);
            receiver.map(|receiver| (feed.clone(), receiver))
        });
        let (feed, receiver) = match joined {
            Some(joined) => joined,
            None => {
                running.retain(|_, feed| feed.strong_count() > 0);
                let (feed, receiver) = Feed::start(start());
                running.insert(key, Arc::downgrade(&feed));
                (feed, receiver)
            }
        };
        drop(running);
        member(feed, receiver, self.events.clone())
    }

    /// How many executions are running.
    pub fn running(&self) -> usize {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.values().filter(|f| f.strong_count() > 0).count()
    }
}

impl Feed {
    /// Starts executing `stream`, with a first subscriber's receiver made
    /// before anything can be sent.
    fn start(
        mut stream: BoxStream<'static, Response>,
    ) -> (Arc<Feed>, broadcast::Receiver<Message>) {
        let (results, receiver) = broadcast::channel(BACKLOG);
        let (set_live, live) = watch::channel(false);
        let ended = Arc::new(Mutex::new(false));
        let sender = results.clone();
        let ending = ended.clone();
        let task = tokio::spawn(async move {
            // The first poll runs the subscription's resolver, which starts
            // listening to the event bus before it waits.
            let mut first = Some(futures::poll!(stream.next()));
            let _ = set_live.send(true);
            loop {
                let item = match first.take() {
                    Some(std::task::Poll::Ready(item)) => item,
                    _ => stream.next().await,
                };
                match item {
                    Some(response) => {
                        let _ = sender.send(Some(Arc::new(response)));
                    }
                    None => break,
                }
            }
            let mut ended = ending.lock().unwrap_or_else(|p| p.into_inner());
            *ended = true;
            let _ = sender.send(None);
        });
        let feed = Arc::new(Feed {
            results,
            live,
            ended,
            task: task.abort_handle(),
        });
        (feed, receiver)
    }
}

/// One subscriber's view of a feed: counted as a live subscriber once the
/// execution listens, then every result until the execution ends.
fn member(
    feed: Arc<Feed>,
    receiver: broadcast::Receiver<Message>,
    events: EventBus,
) -> BoxStream<'static, Response> {
    struct Member {
        feed: Arc<Feed>,
        receiver: broadcast::Receiver<Message>,
        counted: Option<crate::events::SubscriberGuard>,
        events: EventBus,
    }
    let state = Member {
        feed,
        receiver,
        counted: None,
        events,
    };
    futures::stream::unfold(state, |mut member| async move {
        if member.counted.is_none() {
            let mut live = member.feed.live.clone();
            let _ = live.wait_for(|live| *live).await;
            member.counted = Some(member.events.count_subscriber());
        }
        loop {
            match member.receiver.recv().await {
                Ok(Some(response)) => return Some((copy(&response), member)),
                Ok(None) | Err(broadcast::error::RecvError::Closed) => return None,
                // A subscriber that fell behind skips to the newest results.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
            }
        }
    })
    .boxed()
}

/// A subscriber's own copy of a shared result.
fn copy(shared: &Response) -> Response {
    let mut response = Response::new(shared.data.clone());
    response.errors = shared.errors.clone();
    response.extensions = shared.extensions.clone();
    response.cache_control = shared.cache_control;
    response
}
