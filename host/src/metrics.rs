//! Prometheus metrics of SPEC §5 (`valbox_` prefix), served at `/metrics`:
//! evaluations by mode and outcome with their durations, HTTP requests by
//! route and status, the job queue, and the sandbox's own counters
//! (instances, instantiation time, refusals by capability), read when scraped.

use crate::service::ServiceError;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use std::sync::Mutex;
use std::time::Duration;
use valbox_runtime::{Mode, SandboxStats};

/// Buckets for call durations: 20 µs to 10 s.
const CALL_BUCKETS: &[f64] = &[
    0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every metric valbox exports.
pub struct Metrics {
    registry: Registry,
    evaluations: IntCounterVec,
    evaluation_seconds: HistogramVec,
    http_requests: IntCounterVec,
    http_request_seconds: HistogramVec,
    /// Jobs waiting for a worker.
    pub queue_depth: IntGauge,
    /// Seconds from a job's submission to a worker starting it.
    pub queue_lag_seconds: Histogram,
    /// Jobs that finished, by outcome (`done`, `failed`, `dead_letter`).
    pub jobs: IntCounterVec,
    /// Jobs put back in the queue to be tried again.
    pub job_retries: IntCounter,
    /// Stored jobs the reconciler added to Redis again (Redis had lost them).
    pub jobs_requeued: IntCounter,
    /// Rows retention deleted, by kind (`evaluations`, `jobs`, `emails`).
    pub pruned_rows: IntCounterVec,
    /// Writes refused by the storage quota.
    pub quota_refusals: IntCounter,
    /// Bytes the store's database takes (read when scraped).
    pub store_bytes: IntGauge,
    cache_live: IntGauge,
    cache_lookups: IntCounterVec,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    /// Seconds from a schedule's tick to its run starting.
    pub schedule_lag_seconds: Histogram,
    /// Scheduled runs by outcome (`done`, `failed`).
    pub schedule_runs: IntCounterVec,
    /// Schedules paused after failing too often in a row.
    pub schedules_paused: IntCounter,
    /// Attempts to send emails by outcome (`sent`, `retried`, `failed`).
    pub emails: IntCounterVec,
    budget_overdrafts: IntCounterVec,
    instances_in_use: IntGauge,
    instances_max: IntGauge,
    instances_user_share: IntGauge,
    /// Calls refused for want of capacity, by reason: `user_calls` and
    /// `server_calls` (top-level call limits), `user_share` and `pool`
    /// (sandbox instances, nested calls included).
    pub capacity_refusals: IntCounterVec,
    instances: IntCounter,
    instantiate_seconds: prometheus::Counter,
    refusals: IntCounterVec,
    denials_by_rule: IntCounterVec,
    /// Serializes scrapes, which turn the sandbox's totals into counter increments.
    scrape: Mutex<()>,
}

fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> C {
    registry
        .register(Box::new(collector.clone()))
        .expect("metric names are unique");
    collector
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let r = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            register(
                &r,
                IntCounterVec::new(Opts::new(name, help), labels).unwrap(),
            )
        };
        Metrics {
            evaluations: counter_vec(
                "valbox_evaluations_total",
                "Top-level evaluations by mode (own, api, restricted) and outcome (ok, threw, timeout, limit, error)",
                &["mode", "outcome"],
            ),
            evaluation_seconds: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "valbox_evaluation_duration_seconds",
                        "Wall time of top-level evaluations, nested calls included",
                    )
                    .buckets(CALL_BUCKETS.to_vec()),
                    &["mode"],
                )
                .unwrap(),
            ),
            http_requests: counter_vec(
                "valbox_http_requests_total",
                "HTTP requests by route and status",
                &["route", "status"],
            ),
            quota_refusals: register(
                &r,
                IntCounter::new(
                    "valbox_quota_refusals_total",
                    "Writes refused by a user's storage quota",
                )
                .unwrap(),
            ),
            store_bytes: register(
                &r,
                IntGauge::new("valbox_store_bytes", "Bytes the store's database takes").unwrap(),
            ),
            budget_overdrafts: counter_vec(
                "valbox_budget_overdrafts_total",
                "Call trees ended by spending a budget, by budget (val_writes, written_bytes, emails, fetches)",
                &["budget"],
            ),
            pruned_rows: counter_vec(
                "valbox_pruned_rows_total",
                "Rows retention deleted, by kind (evaluations, jobs, emails)",
                &["kind"],
            ),
            http_request_seconds: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "valbox_http_request_duration_seconds",
                        "Time from a request's routing to its response's head, by route template",
                    )
                    .buckets(CALL_BUCKETS.to_vec()),
                    &["route"],
                )
                .unwrap(),
            ),
            queue_depth: register(
                &r,
                IntGauge::new("valbox_queue_depth", "Jobs waiting for a worker").unwrap(),
            ),
            queue_lag_seconds: register(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "valbox_queue_lag_seconds",
                        "Time from a job's submission to a worker starting it",
                    )
                    .buckets(CALL_BUCKETS.to_vec()),
                )
                .unwrap(),
            ),
            jobs: counter_vec(
                "valbox_jobs_total",
                "Finished jobs by outcome (done, failed, dead_letter)",
                &["outcome"],
            ),
            cache_live: register(
                &r,
                IntGauge::new(
                    "valbox_cache_live",
                    "1 while the store's cache serves (PostgreSQL: while its invalidation listener is connected)",
                )
                .unwrap(),
            ),
            cache_lookups: counter_vec(
                "valbox_cache_lookups_total",
                "Cache lookups of keys and latest versions, by result (hit, miss)",
                &["result"],
            ),
            pool_connections: register(
                &r,
                IntGauge::new(
                    "valbox_db_pool_connections",
                    "PostgreSQL connections the pool holds open",
                )
                .unwrap(),
            ),
            pool_idle: register(
                &r,
                IntGauge::new(
                    "valbox_db_pool_idle_connections",
                    "PostgreSQL connections of the pool not in use",
                )
                .unwrap(),
            ),
            schedule_lag_seconds: register(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "valbox_schedule_lag_seconds",
                        "Seconds from a schedule's tick to its run starting",
                    )
                    .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
                )
                .unwrap(),
            ),
            schedule_runs: counter_vec(
                "valbox_schedule_runs_total",
                "Scheduled runs by outcome (done, failed)",
                &["outcome"],
            ),
            emails: counter_vec(
                "valbox_emails_total",
                "Attempts to send emails through SMTP by outcome (sent, retried, failed)",
                &["outcome"],
            ),
            schedules_paused: register(
                &r,
                IntCounter::new(
                    "valbox_schedules_paused_total",
                    "Schedules paused after failing too often in a row",
                )
                .unwrap(),
            ),
            jobs_requeued: register(
                &r,
                IntCounter::new(
                    "valbox_jobs_requeued_total",
                    "Stored jobs added to Redis again because Redis had lost them",
                )
                .unwrap(),
            ),
            job_retries: register(
                &r,
                IntCounter::new("valbox_job_retries_total", "Jobs queued again to be retried")
                    .unwrap(),
            ),
            instances_in_use: register(
                &r,
                IntGauge::new(
                    "valbox_instances_in_use",
                    "Sandbox instances held now (nested calls and compiles included)",
                )
                .unwrap(),
            ),
            instances_max: register(
                &r,
                IntGauge::new(
                    "valbox_instances_max",
                    "Size of the sandbox instance pool (--max-instances)",
                )
                .unwrap(),
            ),
            instances_user_share: register(
                &r,
                IntGauge::new(
                    "valbox_instances_user_max",
                    "Most instances one user's call trees may hold at once (--user-instance-share of the pool)",
                )
                .unwrap(),
            ),
            capacity_refusals: counter_vec(
                "valbox_capacity_refusals_total",
                "Calls refused for want of capacity, by reason (user_calls, server_calls, user_share, pool)",
                &["reason"],
            ),
            instances: register(
                &r,
                IntCounter::new("valbox_instances_total", "Sandbox instances created").unwrap(),
            ),
            instantiate_seconds: register(
                &r,
                prometheus::Counter::new(
                    "valbox_instantiation_seconds_total",
                    "Time spent creating sandbox instances (divide by valbox_instances_total for the mean)",
                )
                .unwrap(),
            ),
            refusals: counter_vec(
                "valbox_capability_denials_total",
                "Capability requests the policy did not allow (permission error, undefined or no-op), by capability",
                &["capability"],
            ),
            denials_by_rule: counter_vec(
                "valbox_policy_denials_total",
                "Refusals of the policy (and library console.emails reaching the caller), by the seed-table row they come from",
                &["rule"],
            ),
            scrape: Mutex::new(()),
            registry: r,
        }
    }

    /// Counts one top-level evaluation.
    pub fn evaluation(&self, mode: Mode, result: Result<(), &ServiceError>, took: Duration) {
        let mode = match mode {
            Mode::Own => "own",
            Mode::Api => "api",
            Mode::Library => "library",
            Mode::Restricted => "restricted",
        };
        let outcome = match result {
            Ok(()) => "ok",
            Err(ServiceError::Threw(_)) => "threw",
            Err(ServiceError::Timeout(_)) => "timeout",
            Err(ServiceError::Limit(_)) => "limit",
            Err(ServiceError::Capacity(_)) => "capacity",
            Err(_) => "error",
        };
        self.evaluations.with_label_values(&[mode, outcome]).inc();
        self.evaluation_seconds
            .with_label_values(&[mode])
            .observe(took.as_secs_f64());
    }

    /// Counts one HTTP request that took `took`; `route` is the route's
    /// template (`/v1/run/{target}`), `status` the status code's digits.
    pub fn http_request(&self, route: &str, status: &str, took: Duration) {
        self.http_requests.with_label_values(&[route, status]).inc();
        self.http_request_seconds
            .with_label_values(&[route])
            .observe(took.as_secs_f64());
    }

    /// Brings the store's figures up to `store`.
    pub fn store(&self, store: &crate::store::StoreStats) {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.cache_live.set(i64::from(store.cache_live));
        for (result, total) in [("hit", store.cache_hits), ("miss", store.cache_misses)] {
            let counter = self.cache_lookups.with_label_values(&[result]);
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        if let Some((connections, idle)) = store.pool {
            self.pool_connections.set(i64::from(connections));
            self.pool_idle.set(i64::from(idle));
        }
    }

    /// The Prometheus text exposition of everything, with the sandbox's
    /// counters brought up to `sandbox`.
    pub fn render(&self, sandbox: &SandboxStats) -> String {
        {
            let _one_at_a_time = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
            self.instances_in_use
                .set(i64::from(sandbox.instances_in_use));
            self.instances_max.set(i64::from(sandbox.max_instances));
            self.instances_user_share
                .set(i64::from(sandbox.user_instances));
            for (reason, total) in &sandbox.capacity_refusals {
                let counter = self.capacity_refusals.with_label_values(&[reason]);
                counter.inc_by(total.saturating_sub(counter.get()));
            }
            self.instances
                .inc_by(sandbox.instances.saturating_sub(self.instances.get()));
            let seconds = sandbox.instantiate_seconds - self.instantiate_seconds.get();
            if seconds > 0.0 {
                self.instantiate_seconds.inc_by(seconds);
            }
            for (capability, total) in &sandbox.refusals {
                let counter = self.refusals.with_label_values(&[capability]);
                counter.inc_by(total.saturating_sub(counter.get()));
            }
            for (budget, total) in &sandbox.overdrafts {
                let counter = self.budget_overdrafts.with_label_values(&[budget]);
                counter.inc_by(total.saturating_sub(counter.get()));
            }
            for (rule, total) in &sandbox.denials {
                let counter = self.denials_by_rule.with_label_values(&[rule]);
                counter.inc_by(total.saturating_sub(counter.get()));
            }
        }
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut text)
            .expect("the text encoder writes to memory");
        String::from_utf8(text).expect("the text format is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(instances: u64, denied_secrets: u64) -> SandboxStats {
        SandboxStats {
            instances_in_use: 1,
            max_instances: 64,
            user_instances: 32,
            capacity_refusals: vec![("user_share", denied_secrets), ("pool", 0)],
            instances,
            instantiate_seconds: instances as f64 * 0.001,
            refusals: vec![("read_secret", denied_secrets), ("fetch", 0)],
            overdrafts: vec![("val_writes", denied_secrets), ("emails", 0)],
            denials: vec![("restricted_secret", denied_secrets)],
        }
    }

    #[test]
    fn sandbox_totals_become_counters_that_only_grow() {
        let metrics = Metrics::new();
        let first = metrics.render(&stats(10, 2));
        assert!(first.contains("valbox_instances_total 10"), "{first}");
        assert!(first.contains("valbox_capability_denials_total{capability=\"read_secret\"} 2"));
        assert!(first.contains("valbox_instances_in_use 1"));
        assert!(first.contains("valbox_instances_max 64"));
        assert!(first.contains("valbox_capacity_refusals_total{reason=\"user_share\"} 2"));
        let second = metrics.render(&stats(25, 3));
        assert!(second.contains("valbox_instances_total 25"), "{second}");
        assert!(second.contains("valbox_capability_denials_total{capability=\"read_secret\"} 3"));
        assert!(second.contains("valbox_budget_overdrafts_total{budget=\"val_writes\"} 3"));
        assert!(second.contains("valbox_capacity_refusals_total{reason=\"user_share\"} 3"));
        assert!(second.contains("valbox_capability_denials_total{capability=\"fetch\"} 0"));
        assert!(second.contains("valbox_policy_denials_total{rule=\"restricted_secret\"} 3"));
    }

    #[test]
    fn evaluations_are_counted_by_mode_and_outcome() {
        let metrics = Metrics::new();
        metrics.evaluation(Mode::Api, Ok(()), Duration::from_micros(30));
        metrics.evaluation(Mode::Api, Ok(()), Duration::from_micros(40));
        let threw = ServiceError::Timeout("late".into());
        metrics.evaluation(Mode::Own, Err(&threw), Duration::from_secs(1));
        metrics.http_request("/v1/run/{target}", "200", Duration::from_micros(300));
        let text = metrics.render(&stats(0, 0));
        assert!(
            text.contains("valbox_evaluations_total{mode=\"api\",outcome=\"ok\"} 2"),
            "{text}"
        );
        assert!(text.contains("valbox_evaluations_total{mode=\"own\",outcome=\"timeout\"} 1"));
        assert!(text.contains("valbox_evaluation_duration_seconds_count{mode=\"api\"} 2"));
        assert!(text
            .contains("valbox_http_requests_total{route=\"/v1/run/{target}\",status=\"200\"} 1"));
        assert!(text.contains(
            "valbox_http_request_duration_seconds_bucket{route=\"/v1/run/{target}\",le=\"0.0005\"} 1"
        ));
        assert!(text.contains(
            "valbox_http_request_duration_seconds_bucket{route=\"/v1/run/{target}\",le=\"0.00025\"} 0"
        ));
    }
}
