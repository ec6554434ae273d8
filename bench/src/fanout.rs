//! Scenario `fanout`: thousands of graphql-transport-ws subscribers on one
//! server. For each count: the server's memory per subscriber, the delay
//! from a check-in to its event at every subscriber, missing deliveries,
//! and the memory left once they have gone. The counts run in one server
//! process in increasing order, everything closed between them.

use std::{
    borrow::Cow,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::Parser;
use futures::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use serde_json::{json, value::RawValue};
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    client::{Gql, Ws, ws_connect},
    load::quantile,
    report::{self, Figure, Goal, RatioStyle, Report, Unit},
    server::{self, Launcher, Server},
};

/// Subscriber counts and events.
#[derive(Debug, Clone, Parser)]
pub struct FanoutArgs {
    /// Subscriber counts, run in increasing order on one server.
    #[arg(long, value_delimiter = ',', default_values_t = [1000, 5000, 10000])]
    subscribers: Vec<usize>,
    /// Check-ins per count, sent one at a time.
    #[arg(long, default_value_t = 20)]
    events: u32,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 200)]
    connect_in_flight: usize,
    /// How long to wait for every subscriber to receive one event.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    event_timeout: Duration,
}

impl Default for FanoutArgs {
    fn default() -> Self {
        FanoutArgs::parse_from(["fanout"])
    }
}

/// The subscription every client holds.
const SUBSCRIPTION: &str =
    "subscription { progressChanged { keyResultId progress status value at } }";

/// The organization of the subscribers and the key result.
const ORG: &str = "bench-fanout";

/// What the subscribers of one count share with the sender of the events.
struct Deliveries {
    /// The clock every time below is measured on.
    origin: Instant,
    /// Per event: microseconds after `origin` when its check-in was sent.
    sent_at_us: Vec<AtomicU64>,
    /// Per event: how many subscribers have received it.
    received: Vec<AtomicUsize>,
    /// Every delivery's delay, in microseconds.
    delays_us: Mutex<Vec<u64>>,
    key_result: String,
    /// The value of event 0; event `i` checks in `first_value + i`.
    first_value: f64,
    /// Subscribers whose `subscribe` went out.
    subscribed: AtomicUsize,
    /// Subscribers that failed or were closed by the server.
    failed: AtomicUsize,
    /// The first failure, for the report.
    first_failure: Mutex<Option<String>>,
}

impl Deliveries {
    fn new(key_result: String, first_value: f64, events: u32) -> Deliveries {
        Deliveries {
            origin: Instant::now(),
            sent_at_us: (0..events).map(|_| AtomicU64::new(u64::MAX)).collect(),
            received: (0..events).map(|_| AtomicUsize::new(0)).collect(),
            delays_us: Mutex::new(Vec::new()),
            key_result,
            first_value,
            subscribed: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            first_failure: Mutex::new(None),
        }
    }

    fn now_us(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }

    /// Records a received event of our key result with `value`.
    fn record(&self, value: f64) {
        let index = (value - self.first_value).round();
        if index < 0.0 || index as usize >= self.received.len() {
            return;
        }
        let index = index as usize;
        let sent = self.sent_at_us[index].load(Ordering::Acquire);
        if sent == u64::MAX {
            return;
        }
        let delay = self.now_us().saturating_sub(sent);
        if let Ok(mut delays) = self.delays_us.lock() {
            delays.push(delay);
        }
        self.received[index].fetch_add(1, Ordering::AcqRel);
    }

    fn fail(&self, why: String) {
        self.failed.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut first) = self.first_failure.lock()
            && first.is_none()
        {
            *first = Some(why);
        }
    }
}

/// The parts of a graphql-transport-ws message a subscriber reads; the
/// payload stays unparsed unless it is an event.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct NextPayload<'a> {
    #[serde(borrow)]
    data: Option<EventData<'a>>,
}

#[derive(Deserialize)]
struct EventData<'a> {
    #[serde(rename = "progressChanged", borrow)]
    progress_changed: Option<ProgressEvent<'a>>,
}

#[derive(Deserialize)]
struct ProgressEvent<'a> {
    #[serde(rename = "keyResultId", borrow)]
    key_result_id: Option<Cow<'a, str>>,
    value: Option<f64>,
}

pub async fn run(launcher: &Launcher, args: FanoutArgs) -> anyhow::Result<Report> {
    let mut counts = args.subscribers.clone();
    counts.sort_unstable();
    let largest = counts.last().copied().unwrap_or(1);
    let env = vec![
        ("WS_MAX_CONNECTIONS", (largest + 100).to_string()),
        // Every client comes from 127.0.0.1.
        ("WS_MAX_PENDING_PER_ADDRESS", "100000".to_owned()),
        // Every client is one user of one organization: a wall of
        // dashboards signed in as one account.
        ("WS_MAX_CONNECTIONS_PER_USER", (largest + 100).to_string()),
        ("WS_MAX_CONNECTIONS_PER_ORG", (largest + 100).to_string()),
    ];
    let server = launcher.start(&env).await?;
    let outcome = measure(&server, &args, &counts, &env).await;
    server.finish().await?;
    outcome
}

async fn measure(
    server: &Server,
    args: &FanoutArgs,
    counts: &[usize],
    env: &[(&str, String)],
) -> anyhow::Result<Report> {
    let mut report = Report::new("fanout");
    report.parameter(
        "subscribers",
        format!(
            "{counts:?}, each `{SUBSCRIPTION}`, opened {} at a time",
            args.connect_in_flight
        ),
    );
    report.parameter(
        "events",
        format!(
            "{} check-ins per count on one key result, one at a time, each awaited at every subscriber for at most {}",
            args.events,
            humantime::format_duration(args.event_timeout)
        ),
    );
    report.parameter("server settings", report::settings(env));
    report.note("the baseline of the RSS rows is the server's idle RSS just before the subscribers came; the ratio of the `after they left` row is the share of their growth still held");
    report.note("delays run from just before the check-in is sent to its receipt by each subscriber task; the subscribers share the machine's cores with the server, so their own reading and parsing is part of the delay");

    let token = server.token(ORG, "owner@bench.example", "admin").await?;
    let gql = Gql::new(&server.base, Some(&token));
    let key_result = key_result(&gql).await?;
    warm_up(server, &gql, &token, &key_result).await?;
    let first_idle = server.rss_bytes()?;
    for (round, &count) in counts.iter().enumerate() {
        let idle = server.rss_bytes()?;
        // Memory an earlier count left behind is reused by this one, so
        // its growth, and the memory per subscriber, would look smaller.
        let inherited = idle.saturating_sub(first_idle) as f64 / 1024.0 / 1024.0;
        if inherited > 8.0 {
            report.note(format!(
                "{count} subscribers: the server started this count with {inherited:.0} MiB kept from earlier counts, which it reuses, so its memory per subscriber is understated; run `--subscribers {count}` alone for a clean figure"
            ));
        }
        let first_value = 1.0 + (round as f64) * f64::from(args.events);
        let deliveries = Arc::new(Deliveries::new(
            key_result.clone(),
            first_value,
            args.events,
        ));
        one_count(server, &gql, &token, args, count, deliveries, &mut report).await?;
    }
    Ok(report)
}

/// An objective with one key result, whose check-ins are the events.
async fn key_result(gql: &Gql) -> anyhow::Result<String> {
    let today = chrono::Utc::now().date_naive();
    let end = today + chrono::Days::new(90);
    let data = gql
        .data(
            &format!("mutation {{ createObjective(input: {{ title: \"Fan-out\", periodStart: \"{today}\", periodEnd: \"{end}\" }}) {{ id }} }}"),
            json!({}),
        )
        .await?;
    let objective = data["createObjective"]["id"]
        .as_str()
        .context("no objective id")?;
    let data = gql
        .data(
            "mutation($o: ID!) { createKeyResult(input: { objectiveId: $o, title: \"Events\", kind: METRIC, startValue: 0, targetValue: 100000 }) { id } }",
            json!({ "o": objective }),
        )
        .await?;
    Ok(data["createKeyResult"]["id"]
        .as_str()
        .context("no key result id")?
        .to_owned())
}

/// Runs every code path of a count once (a subscriber, check-ins, their
/// events) so that the first count's memory figures do not include the
/// server's one-time allocations (caches, prepared statements, buffers).
/// The values are outside every count's range of events.
async fn warm_up(server: &Server, gql: &Gql, token: &str, key_result: &str) -> anyhow::Result<()> {
    let mut ws = ws_connect(&server.address, token).await?;
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIPTION } });
    ws.send(Message::Text(subscribe.to_string().into())).await?;
    for value in [-3.0, -2.0, -1.0] {
        check_in(gql, key_result, value).await?;
    }
    let _ = ws.close(None).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    wait_closed(server).await?;
    Ok(())
}

/// Checks `value` in on the key result: one event for every subscriber.
async fn check_in(gql: &Gql, key_result: &str, value: f64) -> anyhow::Result<()> {
    gql.data(
        "mutation($k: ID!, $v: Float!) { checkIn(input: { keyResultId: $k, value: $v }) { id } }",
        json!({ "k": key_result, "v": value }),
    )
    .await?;
    Ok(())
}

/// What one count measured.
struct CountResult {
    count: usize,
    events: u32,
    /// Time to open and subscribe every connection.
    opened: Duration,
    /// Server RSS before the subscribers came, with them, after they left.
    idle: u64,
    with: u64,
    after: u64,
    /// Every delivery's delay in microseconds, sorted.
    delays_us: Vec<u64>,
    missing: usize,
    failed: usize,
    first_failure: Option<String>,
    /// The server's connection gauge if it never went back to 0.
    left_open: Option<f64>,
}

/// Opens `count` subscribers, measures memory and deliveries, closes them.
async fn one_count(
    server: &Server,
    gql: &Gql,
    token: &str,
    args: &FanoutArgs,
    count: usize,
    deliveries: Arc<Deliveries>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let idle = server.rss_bytes()?;
    let subscriptions_before = server.metric(server::SUBSCRIPTIONS).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let opening = Instant::now();
    let gate = Arc::new(Semaphore::new(args.connect_in_flight.max(1)));
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let (address, token) = (server.address.clone(), token.to_owned());
            let (deliveries, gate, stop) = (deliveries.clone(), gate.clone(), stop_rx.clone());
            tokio::spawn(async move {
                if let Err(err) = subscriber(&address, &token, &deliveries, &gate, stop).await {
                    deliveries.fail(format!("{err:#}"));
                }
            })
        })
        .collect();
    wait_subscribed(server, &deliveries, count, subscriptions_before).await?;
    let opened = opening.elapsed();
    // A moment for the server to finish what the last subscribe started.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let with = server.rss_bytes()?;

    let missing = send_events(gql, args, count, &deliveries).await?;

    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }
    let left_open = wait_closed(server).await?;
    let after = server.rss_bytes()?;

    let mut delays_us = deliveries
        .delays_us
        .lock()
        .map(|d| d.clone())
        .unwrap_or_default();
    delays_us.sort_unstable();
    push_count(
        report,
        CountResult {
            count,
            events: args.events,
            opened,
            idle,
            with,
            after,
            delays_us,
            missing,
            failed: deliveries.failed.load(Ordering::Acquire),
            first_failure: deliveries.first_failure.lock().ok().and_then(|f| f.clone()),
            left_open,
        },
    );
    Ok(())
}

/// Sends the events one at a time, each waited for at every subscriber
/// (at most `--event-timeout`), and returns the deliveries that never came.
async fn send_events(
    gql: &Gql,
    args: &FanoutArgs,
    count: usize,
    deliveries: &Deliveries,
) -> anyhow::Result<usize> {
    let mut missing = 0usize;
    for i in 0..args.events as usize {
        let value = deliveries.first_value + i as f64;
        deliveries.sent_at_us[i].store(deliveries.now_us(), Ordering::Release);
        check_in(gql, &deliveries.key_result, value).await?;
        let deadline = Instant::now() + args.event_timeout;
        while deliveries.received[i].load(Ordering::Acquire) < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        missing += count.saturating_sub(deliveries.received[i].load(Ordering::Acquire));
    }
    Ok(missing)
}

/// The rows and notes of one count.
fn push_count(report: &mut Report, r: CountResult) {
    let count = r.count;
    let ms = |us: Option<u64>| us.map(|u| u as f64 / 1000.0);
    let mib = |bytes: u64| bytes as f64 / 1024.0 / 1024.0;
    let per_subscriber_kib = (r.with as f64 - r.idle as f64) / count as f64 / 1024.0;
    let grew = r.with.saturating_sub(r.idle);
    let kept = r.after as f64 - r.idle as f64;
    let kept_share = (grew > 0).then(|| kept / grew as f64);
    let p99 = ms(quantile(&r.delays_us, 0.99));
    let missing = r.missing as f64;

    report.push(Figure::new(
        format!("{count} subscribers: connected and subscribed in"),
        Unit::Seconds,
        Some(r.opened.as_secs_f64()),
    ));
    report.push(
        Figure::new(
            format!("{count} subscribers: server RSS with them"),
            Unit::MiB,
            Some(mib(r.with)),
        )
        .baseline(Some(mib(r.idle))),
    );
    report.push(
        Figure::new(
            format!("{count} subscribers: memory per subscriber"),
            Unit::KiB,
            Some(per_subscriber_kib),
        )
        .goal(Goal::at_most("≤ 16 KiB", 16.0, Some(per_subscriber_kib))),
    );
    report.push(Figure::new(
        format!("{count} subscribers: delivery p50"),
        Unit::Milliseconds,
        ms(quantile(&r.delays_us, 0.5)),
    ));
    report.push(
        Figure::new(
            format!("{count} subscribers: delivery p99"),
            Unit::Milliseconds,
            p99,
        )
        .goal(Goal::at_most("≤ 200 ms", 200.0, p99)),
    );
    report.push(Figure::new(
        format!("{count} subscribers: delivery max"),
        Unit::Milliseconds,
        ms(r.delays_us.last().copied()),
    ));
    report.push(
        Figure::new(
            format!(
                "{count} subscribers: missing deliveries (of {})",
                count * r.events as usize
            ),
            Unit::Count,
            Some(missing),
        )
        .goal(Goal::at_most("0", 0.0, Some(missing))),
    );
    report.push(
        Figure::new(
            format!("{count} subscribers: server RSS after they left"),
            Unit::MiB,
            Some(mib(r.after)),
        )
        .baseline(Some(mib(r.idle)))
        .ratio(kept_share, RatioStyle::Percent)
        .goal(Goal::at_most("≤ 25 % of the growth kept", 0.25, kept_share)),
    );
    if r.failed > 0 {
        report.note(format!(
            "{count} subscribers: {} connections failed or were closed by the server; first: {}",
            r.failed,
            r.first_failure.unwrap_or_default()
        ));
    }
    if let Some(open) = r.left_open {
        report.note(format!(
            "{count} subscribers: the server still counted {open} WebSocket connections 30 s after they closed"
        ));
    }
}

/// Waits until every subscriber has sent `subscribe` (or failed) and then
/// until the server counts their subscriptions; without metrics, waits two
/// seconds after the last `subscribe` instead.
async fn wait_subscribed(
    server: &Server,
    deliveries: &Deliveries,
    count: usize,
    before: Option<f64>,
) -> anyhow::Result<()> {
    let deadline =
        Instant::now() + Duration::from_secs(60) + Duration::from_millis(count as u64 * 20);
    loop {
        let done = deliveries.subscribed.load(Ordering::Acquire)
            + deliveries.failed.load(Ordering::Acquire);
        if done >= count {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {done} of {count} subscribers were connected after the deadline");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let live = deliveries.subscribed.load(Ordering::Acquire) as f64;
    let Some(before) = before else {
        tokio::time::sleep(Duration::from_secs(2)).await;
        return Ok(());
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if server
            .metric(server::SUBSCRIPTIONS)
            .await?
            .is_some_and(|now| now - before >= live)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the server did not count {live} new subscriptions within 30 s")
}

/// Waits a few seconds for the server to let the connections go: until
/// its connection gauge is 0 (at most 30 s) and three seconds more for
/// memory to settle. Returns the gauge if it never reached 0.
async fn wait_closed(server: &Server) -> anyhow::Result<Option<f64>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut left = server.metric(server::WEBSOCKET_CONNECTIONS).await?;
    while let Some(open) = left {
        if open <= 0.0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = server.metric(server::WEBSOCKET_CONNECTIONS).await?;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(left.filter(|open| *open > 0.0))
}

/// One subscriber: connects (while holding a slot of `gate`), subscribes,
/// then answers pings and records events until told to stop, when it
/// closes with 1000 and waits for the server's close frame.
async fn subscriber(
    address: &str,
    token: &str,
    deliveries: &Deliveries,
    gate: &Semaphore,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut ws = {
        let _slot = gate.acquire().await.context("the connect gate closed")?;
        let mut ws = ws_connect(address, token).await?;
        let subscribe =
            json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIPTION } });
        ws.send(Message::Text(subscribe.to_string().into()))
            .await
            .context("sending subscribe")?;
        ws
    };
    deliveries.subscribed.fetch_add(1, Ordering::AcqRel);
    loop {
        tokio::select! {
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => on_text(&text, &mut ws, deliveries).await?,
                Some(Ok(Message::Close(frame))) => bail!("the server closed the connection: {frame:?}"),
                Some(Ok(_)) => {}
                Some(Err(err)) => bail!("reading the WebSocket: {err}"),
                None => bail!("the connection ended"),
            },
            _ = stop.changed() => break,
        }
    }
    let _ = ws.close(None).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    Ok(())
}

/// Handles one text frame: a ping gets its pong, an event of our key result
/// is recorded, an error or a completed subscription fails the subscriber.
async fn on_text(text: &str, ws: &mut Ws, deliveries: &Deliveries) -> anyhow::Result<()> {
    let frame: Frame = serde_json::from_str(text).context("a message that is not JSON")?;
    match frame.kind.as_ref() {
        "next" => {
            let payload = frame.payload.context("next without payload")?;
            let next: NextPayload = serde_json::from_str(payload.get())?;
            if let Some(event) = next.data.and_then(|d| d.progress_changed)
                && event.key_result_id.as_deref() == Some(deliveries.key_result.as_str())
                && let Some(value) = event.value
            {
                deliveries.record(value);
            }
        }
        "ping" => {
            ws.send(Message::Text(r#"{"type":"pong"}"#.into()))
                .await
                .context("sending pong")?;
        }
        "pong" => {}
        "error" | "complete" => bail!("the subscription ended: {text}"),
        other => bail!("an unexpected {other} message: {text}"),
    }
    Ok(())
}
