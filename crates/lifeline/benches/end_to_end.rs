//! End-to-end benchmark: the real `lifeline serve` and `lifeline endpoint start` (2 nodes x 4
//! workers) running no-op Python and shell tasks, every transition recorded. Prints figures.
//!
//! ```text
//! cargo bench -p lifeline --bench end_to_end
//! LIFELINE_BENCH_SIZES=10000,100000 LIFELINE_BENCH_ROUND_TRIPS=1000 cargo bench -p lifeline --bench end_to_end
//! LIFELINE_BENCH_PROVIDER=slurm cargo bench -p lifeline --bench end_to_end
//! LIFELINE_BENCH_PREFETCH=28 cargo bench -p lifeline --bench end_to_end
//! LIFELINE_BENCH_WINDOW=1000000 cargo bench -p lifeline --bench end_to_end
//! ```
//!
//! `LIFELINE_BENCH_PREFETCH` sets the executor's `prefetch` (tasks each node holds beyond its
//! workers); `LIFELINE_BENCH_WINDOW` the endpoint's `task_window` (the most tasks the service
//! sends it at once); without them, the defaults.
//!
//! With `LIFELINE_BENCH_PROVIDER=slurm` (a running Slurm: `scripts/slurm`) the two nodes are two
//! Slurm blocks of one node each, started on demand: the first figure is then the time from
//! submitting one task to its result when its block must first be started by Slurm.
//!
//! On the local provider it first measures the start to first result: from launching
//! `lifeline up` on a fresh data directory to the first no-op Python result read. During each
//! batch of Python tasks it samples the memory of the whole process tree it started (the service,
//! the agent, its managers and their Python workers; not this benchmark's own client process),
//! as `benches/process_tree.py` samples the peers' trees for `scripts/bench`.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lifeline_client::Client;
use lifeline_model::api::{FunctionSpec, RegisterFunction, StatsQuery, SubmitRequest, TaskSpec};
use lifeline_model::{EndpointId, FunctionId, State};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_lifeline");

struct Service {
    url: String,
    client: Client,
    _serve: Child,
    _tmp: tempfile::TempDir,
}

impl Service {
    async fn start() -> Self {
        let tmp = tempfile::tempdir().expect("dir");
        let mut serve = Command::new(BIN)
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(tmp.path().join("data"))
            .env("LIFELINE_MAX_PAYLOAD_BYTES", "67108864")
            .env("LIFELINE_LOG", "warn")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("serve");
        let mut lines = BufReader::new(serve.stdout.take().expect("stdout")).lines();
        let url = loop {
            let line = lines.next_line().await.expect("stdout").expect("line");
            if let Some(rest) = line.strip_prefix("Lifeline is listening on ") {
                break rest.trim_end_matches('/').to_owned();
            }
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let token = std::fs::read_to_string(tmp.path().join("data/token"))
            .expect("token")
            .trim()
            .to_owned();
        Self {
            client: Client::new(url.clone(), token),
            url,
            _serve: serve,
            _tmp: tmp,
        }
    }
}

/// Seconds from launching `lifeline up` on a fresh data directory to the first result of a no-op
/// Python function, registered and submitted once the service printed its URL. `up` runs the
/// endpoint this machine would get (`EndpointConfig::for_this_machine`), and writes the CLI's
/// settings into the scratch directory rather than the user's.
async fn start_to_first_result() -> f64 {
    let tmp = tempfile::tempdir().expect("dir");
    let start = Instant::now();
    let mut up = Command::new(BIN)
        .args(["up", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("data"))
        .arg("--dashboard-dir")
        .arg(tmp.path().join("no-dashboard"))
        .env("XDG_CONFIG_HOME", tmp.path())
        .env("LIFELINE_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("up");
    let mut lines = BufReader::new(up.stdout.take().expect("stdout")).lines();
    let (url, token) = loop {
        let line = lines.next_line().await.expect("stdout").expect("line");
        if let Some((url, token)) = line
            .strip_prefix("Lifeline is up: ")
            .and_then(|rest| rest.split_once("/#token="))
        {
            break (url.to_owned(), token.to_owned());
        }
    };
    let endpoint: EndpointId = loop {
        let line = lines.next_line().await.expect("stdout").expect("line");
        if let Some(id) = line.trim().strip_prefix("endpoint: local (") {
            break id.trim_end_matches(')').parse().expect("endpoint id");
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let client = Client::new(url, token);
    let function = client
        .register_function(&RegisterFunction::new("noop", noop_function()))
        .await
        .expect("function");
    let answer = client
        .submit(endpoint, &calls(function, 1))
        .await
        .expect("submit");
    let doc = client
        .wait_for_task(answer.task_ids[0], Duration::from_secs(60))
        .await
        .expect("task");
    assert_eq!(doc.status, State::Success);
    let elapsed = start.elapsed().as_secs_f64();
    // SIGTERM, so that `up` stops its managers and workers before the next measurement.
    let pid = up.id().expect("pid").to_string();
    let _ = Command::new("kill").arg(pid).status().await;
    let _ = up.wait().await;
    elapsed
}

fn noop_function() -> FunctionSpec {
    FunctionSpec::Python {
        source: "def noop():\n    return None\n".into(),
        entrypoint: "noop".into(),
    }
}

/// The largest resident memory, summed, of every process below this one (the service, the agent,
/// its managers and their workers), sampled from /proc every 100 ms by a thread of its own.
struct PeakTreeRss {
    peak_kib: Arc<AtomicU64>,
}

impl PeakTreeRss {
    fn start() -> Self {
        let peak_kib = Arc::new(AtomicU64::new(0));
        let peak = Arc::clone(&peak_kib);
        let root = std::process::id();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(100));
                peak.fetch_max(tree_rss_kib(root), Ordering::Relaxed);
            }
        });
        Self { peak_kib }
    }

    /// The peak since the previous call, in MiB.
    fn take_mib(&self) -> f64 {
        self.peak_kib.swap(0, Ordering::Relaxed) as f64 / 1024.0
    }
}

/// Every process below `root`, not counting `root`.
fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let parent = stat_fields(pid).and_then(|f| f.get(1)?.parse().ok());
        if let Some(parent) = parent {
            children.entry(parent).or_default().push(pid);
        }
    }
    let mut todo = children.get(&root).cloned().unwrap_or_default();
    let mut all = Vec::new();
    while let Some(pid) = todo.pop() {
        all.push(pid);
        todo.extend(children.get(&pid).into_iter().flatten());
    }
    all
}

/// The fields of `/proc/PID/stat` after the command name (which, in parentheses, may hold
/// spaces): the state first, then the parent, ...
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The summed VmRSS of `root`'s descendants, not counting `root`.
fn tree_rss_kib(root: u32) -> u64 {
    descendants(root).into_iter().map(rss_kib).sum()
}

/// What a process of the tree is, from its command line.
fn role(pid: u32) -> &'static str {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let has = |word: &[u8]| args.iter().skip(1).any(|a| *a == word);
    if args[0].ends_with(b"python3") {
        "Python workers"
    } else if has(b"serve") {
        "service"
    } else if has(b"manager") {
        "managers"
    } else if has(b"start") {
        "agent"
    } else {
        "other"
    }
}

/// CPU seconds used so far by the benchmark's process tree, by role: this process (the client
/// that submits and polls) and each kind of process below it. A process's figure includes the
/// children it has reaped (a manager's shell tasks).
fn cpu_by_role(ticks_per_second: f64) -> BTreeMap<&'static str, f64> {
    let root = std::process::id();
    let mut cpu = BTreeMap::new();
    for pid in descendants(root).into_iter().chain([root]) {
        let Some(fields) = stat_fields(pid) else {
            continue;
        };
        // utime, stime, cutime, cstime: fields 14 to 17 of stat, counted from the state (3).
        let ticks: f64 = fields
            .iter()
            .skip(11)
            .take(4)
            .filter_map(|v| v.parse::<f64>().ok())
            .sum();
        let role = if pid == root {
            "benchmark client"
        } else {
            role(pid)
        };
        *cpu.entry(role).or_insert(0.0) += ticks / ticks_per_second;
    }
    cpu
}

/// The store writer thread's time so far, running and waiting for a core, in seconds (its
/// `schedstat`): the service's serial stage, which should never wait for want of a core.
fn writer_times() -> Option<(f64, f64)> {
    let service = descendants(std::process::id())
        .into_iter()
        .find(|pid| role(*pid) == "service")?;
    for thread in std::fs::read_dir(format!("/proc/{service}/task"))
        .ok()?
        .flatten()
    {
        let path = thread.path();
        let Ok(name) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if name.trim() == lifeline_service::store::WRITER_THREAD {
            let stat = std::fs::read_to_string(path.join("schedstat")).ok()?;
            let mut ns = stat.split_whitespace().map(|v| v.parse::<f64>().ok());
            return Some((ns.next()?? / 1e9, ns.next()?? / 1e9));
        }
    }
    None
}

/// Prints the share of `wall` seconds the store writer spent running and waiting for a core
/// since `before`.
fn print_writer(tag: &str, what: &str, n: usize, before: Option<(f64, f64)>, wall: f64) {
    let (Some((ran, waited)), Some((ran_before, waited_before))) = (writer_times(), before) else {
        return;
    };
    println!(
        "metric: {tag} store writer running, {what} batch of {n} = {:.0} % of the time",
        (ran - ran_before) / wall * 100.0
    );
    println!(
        "metric: {tag} store writer waiting for a core, {what} batch of {n} = {:.0} % of the time",
        (waited - waited_before) / wall * 100.0
    );
}

/// Clock ticks per second, the unit of /proc's CPU times.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Prints the CPU time per task each role spent between `before` and now, and how many cores
/// the whole tree kept busy over `wall` seconds: what bounds the throughput on this machine.
fn print_cpu(tag: &str, what: &str, n: usize, before: &BTreeMap<&str, f64>, wall: f64, ticks: f64) {
    let after = cpu_by_role(ticks);
    let mut total = 0.0;
    for (role, seconds) in &after {
        let used = seconds - before.get(role).copied().unwrap_or(0.0);
        total += used;
        println!(
            "metric: {tag} CPU per {what} task, batch of {n}, {role} = {:.0} µs",
            used / n as f64 * 1e6
        );
    }
    println!(
        "metric: {tag} CPU per {what} task, batch of {n}, all = {:.0} µs ({:.2} cores busy)",
        total / n as f64 * 1e6,
        total / wall
    );
}

/// A process's VmRSS (0 once it is gone).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

fn calls(function: FunctionId, n: usize) -> SubmitRequest<Value> {
    let task = TaskSpec {
        function_id: function,
        args: None,
        kwargs: None,
    };
    SubmitRequest {
        tasks: vec![task; n],
        max_retries: None,
    }
}

/// Submits `n` calls in requests of 10,000 and waits until the endpoint finished them all.
async fn throughput(
    s: &Service,
    endpoint: EndpointId,
    function: FunctionId,
    n: usize,
) -> (f64, u64) {
    let (_, before) = finished(s, endpoint).await;
    let start = Instant::now();
    let mut left = n;
    while left > 0 {
        let batch = left.min(10_000);
        s.client
            .submit(endpoint, &calls(function, batch))
            .await
            .expect("submit");
        left -= batch;
    }
    loop {
        let (failed, done) = finished(s, endpoint).await;
        if done - before >= n as u64 {
            return (n as f64 / start.elapsed().as_secs_f64(), failed);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The most no-op programs this machine starts per second with nothing in between: `n` runs of
/// `true`, 8 at a time (as many as the endpoint's workers), each started directly and waited
/// for. A shell task can go no faster than its program starts, so this is the shell figure's
/// ceiling, measured in the same minute.
fn bare_spawns(n: usize) -> f64 {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for i in 0..8 {
            scope.spawn(move || {
                for _ in (i..n).step_by(8) {
                    let status = std::process::Command::new("true")
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .expect("true");
                    assert!(status.success());
                }
            });
        }
    });
    n as f64 / start.elapsed().as_secs_f64()
}

/// (failed, finished) tasks of the endpoint so far.
async fn finished(s: &Service, endpoint: EndpointId) -> (u64, u64) {
    let query = StatsQuery {
        endpoint_id: Some(endpoint.to_string()),
        ..StatsQuery::default()
    };
    let stats = s.client.stats(&query).await.expect("stats");
    let failed = stats.tasks.get(State::Failed);
    (failed, stats.tasks.get(State::Success) + failed)
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::var("LIFELINE_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let round_trips: usize = std::env::var("LIFELINE_BENCH_ROUND_TRIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let slurm = std::env::var("LIFELINE_BENCH_PROVIDER").is_ok_and(|p| p == "slurm");
    if !slurm {
        println!(
            "metric: lifeline start to first result (lifeline up) = {:.2} s",
            start_to_first_result().await
        );
    }
    let memory = PeakTreeRss::start();
    let s = Service::start().await;
    let ep = s.client.register_endpoint("bench").await.expect("endpoint");
    let endpoint = ep.endpoint_id;
    let dir = s._tmp.path().join("agent");
    std::fs::create_dir_all(&dir).expect("dir");
    let config = if slurm {
        "[[executor]]\nlabel = \"bench\"\nprovider = \"slurm\"\nworkers_per_node = 4\n\
         [executor.slurm]\nexclusive = false\ninit_blocks = 0\nmin_blocks = 0\nmax_blocks = 2\n\
         block_walltime = \"01:00:00\"\nidle_timeout = 600\n"
    } else {
        "[[executor]]\nlabel = \"bench\"\nnodes = 2\nworkers_per_node = 4\n"
    };
    // Tasks each node holds beyond its workers (default: as many as its workers).
    let prefetch = std::env::var("LIFELINE_BENCH_PREFETCH")
        .ok()
        .and_then(|p| p.parse::<usize>().ok());
    let config = match prefetch {
        Some(n) => config.replacen(
            "workers_per_node = 4\n",
            &format!("workers_per_node = 4\nprefetch = {n}\n"),
            1,
        ),
        None => config.to_owned(),
    };
    // The most tasks the service sends the endpoint at once (default: the agent's own choice).
    let config = match std::env::var("LIFELINE_BENCH_WINDOW") {
        Ok(window) => format!("task_window = {window}\n{config}"),
        Err(_) => config,
    };
    let tag = if slurm { "lifeline slurm" } else { "lifeline" };
    std::fs::write(dir.join("endpoint.toml"), config).expect("config");
    std::fs::write(dir.join("endpoint.token"), &ep.token).expect("token file");
    let _agent = Command::new(BIN)
        .args(["endpoint", "start", "--service", &s.url, "--token-file"])
        .arg(dir.join("endpoint.token"))
        .arg("--dir")
        .arg(&dir)
        .arg("--config")
        .arg(dir.join("endpoint.toml"))
        .env("LIFELINE_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("agent");
    while !s.client.endpoint(endpoint).await.expect("endpoint").online {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let python = s
        .client
        .register_function(&RegisterFunction::new("noop", noop_function()))
        .await
        .expect("function");
    let truth = FunctionSpec::Shell {
        command: "true".into(),
    };
    let shell = s
        .client
        .register_function(&RegisterFunction::new("true", truth))
        .await
        .expect("function");
    println!(
        "Lifeline end to end: one {} endpoint, 2 nodes x 4 workers, {} cores",
        if slurm { "Slurm" } else { "local" },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if slurm {
        let start = Instant::now();
        let answer = s
            .client
            .submit(endpoint, &calls(python, 1))
            .await
            .expect("submit");
        while s
            .client
            .task(answer.task_ids[0])
            .await
            .expect("task")
            .pending
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!(
            "metric: {tag} first result with a block to start = {:.2} s",
            start.elapsed().as_secs_f64()
        );
    }

    // Warm the Python workers (and, on Slurm, start both blocks).
    throughput(&s, endpoint, python, 200).await;
    let ticks = clock_ticks();
    for &n in &sizes {
        memory.take_mib();
        let (cpu, writer) = (cpu_by_role(ticks), writer_times());
        let (rate, failed) = throughput(&s, endpoint, python, n).await;
        println!("metric: {tag} no-op Python tasks, batch of {n} = {rate:.1} tasks/s");
        print_cpu(tag, "Python", n, &cpu, n as f64 / rate, ticks);
        print_writer(tag, "Python", n, writer, n as f64 / rate);
        println!(
            "metric: {tag} peak RSS of the process tree, batch of {n} = {:.1} MiB",
            memory.take_mib()
        );
        assert_eq!(failed, 0, "no task may fail");
    }
    for &n in &sizes {
        let n = n.min(20_000);
        let floor = tokio::task::spawn_blocking(move || bare_spawns(n))
            .await
            .expect("bare spawns");
        println!(
            "metric: machine floor, `true` started bare 8 at a time, {n} = {floor:.1} programs/s"
        );
        let (cpu, writer) = (cpu_by_role(ticks), writer_times());
        let (rate, _) = throughput(&s, endpoint, shell, n).await;
        println!("metric: {tag} no-op shell tasks, batch of {n} = {rate:.1} tasks/s");
        println!(
            "metric: {tag} no-op shell tasks / machine floor, batch of {n} = {:.2} ratio",
            rate / floor
        );
        print_cpu(tag, "shell", n, &cpu, n as f64 / rate, ticks);
        print_writer(tag, "shell", n, writer, n as f64 / rate);
    }

    let mut times = Vec::with_capacity(round_trips);
    // Where each round trip's time went, step by step, from the times each transition records
    // (every process runs on this machine, on one clock).
    let mut steps: BTreeMap<usize, (String, Vec<Duration>)> = BTreeMap::new();
    let mut step = |i: usize, name: String, micros: u64| {
        let entry = steps.entry(i).or_insert_with(|| (name, Vec::new()));
        entry.1.push(Duration::from_micros(micros));
    };
    let one = calls(python, 1);
    for _ in 0..round_trips {
        let start = Instant::now();
        let sent = lifeline_service::now();
        let answer = s.client.submit(endpoint, &one).await.expect("submit");
        let submitted = start.elapsed();
        // The service answers as soon as the result is stored (?wait=), no polling.
        let doc = s
            .client
            .wait_for_task(answer.task_ids[0], Duration::from_secs(30))
            .await
            .expect("task");
        assert_eq!(doc.status, State::Success);
        let read = lifeline_service::now();
        times.push(start.elapsed());
        step(
            0,
            "submit call answered".into(),
            submitted.as_micros() as u64,
        );
        let mut before = ("sent", sent);
        let log = &doc.details.task_transitions;
        for (i, t) in log.iter().enumerate() {
            let name = format!("{} -> {}", before.0, t.state.wire());
            step(i + 1, name, t.at.micros_since(before.1));
            before = (t.state.wire(), t.at);
        }
        step(
            log.len() + 1,
            "success -> read by the client".into(),
            read.micros_since(before.1),
        );
    }
    times.sort();
    println!(
        "metric: {tag} round trip p50 = {:.2} ms",
        percentile(&times, 0.5)
    );
    println!(
        "metric: {tag} round trip p99 = {:.2} ms",
        percentile(&times, 0.99)
    );
    for (name, mut durations) in steps.into_values() {
        durations.sort();
        println!(
            "metric: {tag} round trip step {name} p50 = {:.3} ms",
            percentile(&durations, 0.5)
        );
    }
}
