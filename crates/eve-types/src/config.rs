//! The cluster configuration, its validation, and the sizes derived from it.
//!
//! A [`ClusterConfig`] is plain data (it may come from a file or a command line); calling
//! [`ClusterConfig::validate`] checks every field once and yields a [`ValidConfig`], which is
//! what the rest of eve accepts. Errors name the field, the value and the allowed range.

use crate::limits::{
    BATCH_REQUESTS_MAX, CHECKPOINT_INTERVAL_MAX, FAULTS_U_MAX, MERKLE_BUCKET_BITS_MAX,
    MERKLE_BUCKET_BITS_MIN, OBJECT_VALUE_BYTES_MAX, PIPELINE_DEPTH_MAX, TIMEOUT_MS_MAX,
    TIMEOUT_MS_MIN,
};
use serde::{Deserialize, Serialize};

/// How the cluster replicates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicationMode {
    /// Asynchronous execute-verify replication tolerating `u` failures of any kind while live,
    /// of which up to `r` (`r <= u`) may be commission (Byzantine) failures while safe.
    Eve {
        /// Failures of any kind tolerated while staying live (at least 1).
        u: u32,
        /// Commission failures tolerated while staying safe (`0 <= r <= u`; 0 is crash-only).
        r: u32,
    },
    /// Two execution replicas, no verifiers, crash faults only, synchronous network assumed:
    /// the configuration that compares with Remus.
    PrimaryBackup,
}

/// The cluster configuration as written by an operator; see [`ClusterConfig::validate`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// Replication mode and fault thresholds.
    pub mode: ReplicationMode,
    /// Most requests the primary puts in one batch (1 ..= [`BATCH_REQUESTS_MAX`]).
    pub batch_requests_max: usize,
    /// How long the primary waits for a batch to fill before cutting it, in milliseconds.
    pub batch_timeout_ms: u64,
    /// Most batches executed but not yet committed (1 ..= [`PIPELINE_DEPTH_MAX`]).
    pub pipeline_depth: usize,
    /// Batches between checkpoints, which advance the stable version
    /// (1 ..= [`CHECKPOINT_INTERVAL_MAX`]).
    pub checkpoint_interval: u64,
    /// How long verifiers wait for a batch to commit before changing view, in milliseconds.
    pub verify_timeout_ms: u64,
    /// How long a client waits for enough matching replies before retransmitting to all
    /// replicas, in milliseconds.
    pub client_retransmit_ms: u64,
    /// Primary-backup only: how long one side waits for the other before going on alone or
    /// promoting itself, in milliseconds.
    pub backup_timeout_ms: u64,
    /// The state's Merkle tree has `2^merkle_bucket_bits` buckets
    /// ([`MERKLE_BUCKET_BITS_MIN`] ..= [`MERKLE_BUCKET_BITS_MAX`]). Pick about
    /// `expected objects / 16`; every replica must use the same value, since it shapes the root.
    pub merkle_bucket_bits: u8,
    /// Largest object value the application may write, in bytes
    /// (1 ..= [`OBJECT_VALUE_BYTES_MAX`]).
    pub object_value_bytes_max: usize,
    /// Whether every execution replica sends each committed reply to its client. With
    /// `r >= 1` they always do (a client needs `r + 1` matching replies); with `r = 0` (and in
    /// primary-backup) only the primary does by default, and the others answer a client only
    /// when it retransmits: one reply message per request instead of one per replica. Set it to
    /// spare clients a retransmission when the primary fails between committing and replying.
    #[serde(default)]
    pub reply_from_every_replica: bool,
    /// The cluster's identity, which clients sign into every request (with `r >= 1`) so that
    /// a request cannot be replayed in another cluster. The node derives it from the cluster
    /// CA's certificate.
    #[serde(default)]
    pub cluster_id: crate::Digest,
}

impl ClusterConfig {
    /// The defaults for a mode: batches of up to 1,000 requests cut every 2 ms, 8 batches in
    /// flight, a checkpoint every 64 batches, 2^16 Merkle buckets.
    pub fn new(mode: ReplicationMode) -> Self {
        Self {
            mode,
            batch_requests_max: 1000,
            batch_timeout_ms: 2,
            pipeline_depth: 8,
            checkpoint_interval: 64,
            verify_timeout_ms: 500,
            client_retransmit_ms: 1000,
            backup_timeout_ms: 500,
            merkle_bucket_bits: 16,
            object_value_bytes_max: 1024 * 1024,
            reply_from_every_replica: false,
            cluster_id: crate::Digest::ZERO,
        }
    }

    /// Checks every field and derives the cluster sizes.
    ///
    /// ```
    /// use eve_types::{ClusterConfig, ReplicationMode};
    ///
    /// let mut config = ClusterConfig::new(ReplicationMode::Eve { u: 1, r: 2 });
    /// let err = config.validate().unwrap_err();
    /// assert_eq!(err.field, "mode.r");
    /// assert_eq!(err.to_string(), "mode.r = 2 is out of range: allowed 0 ..= u (1)");
    /// ```
    pub fn validate(&self) -> Result<ValidConfig, ConfigError> {
        let sizes = match self.mode {
            ReplicationMode::Eve { u, r } => {
                check_range("mode.u", u64::from(u), 1, u64::from(FAULTS_U_MAX))?;
                if r > u {
                    return Err(ConfigError::new("mode.r", r, format!("0 ..= u ({u})")));
                }
                QuorumSizes::eve(u, r)
            }
            ReplicationMode::PrimaryBackup => QuorumSizes::primary_backup(),
        };
        check_range(
            "batch_requests_max",
            self.batch_requests_max as u64,
            1,
            BATCH_REQUESTS_MAX as u64,
        )?;
        check_range(
            "batch_timeout_ms",
            self.batch_timeout_ms,
            TIMEOUT_MS_MIN,
            TIMEOUT_MS_MAX,
        )?;
        check_range(
            "pipeline_depth",
            self.pipeline_depth as u64,
            1,
            PIPELINE_DEPTH_MAX as u64,
        )?;
        check_range(
            "checkpoint_interval",
            self.checkpoint_interval,
            1,
            CHECKPOINT_INTERVAL_MAX,
        )?;
        check_range(
            "verify_timeout_ms",
            self.verify_timeout_ms,
            TIMEOUT_MS_MIN,
            TIMEOUT_MS_MAX,
        )?;
        check_range(
            "client_retransmit_ms",
            self.client_retransmit_ms,
            TIMEOUT_MS_MIN,
            TIMEOUT_MS_MAX,
        )?;
        check_range(
            "backup_timeout_ms",
            self.backup_timeout_ms,
            TIMEOUT_MS_MIN,
            TIMEOUT_MS_MAX,
        )?;
        check_range(
            "merkle_bucket_bits",
            u64::from(self.merkle_bucket_bits),
            u64::from(MERKLE_BUCKET_BITS_MIN),
            u64::from(MERKLE_BUCKET_BITS_MAX),
        )?;
        check_range(
            "object_value_bytes_max",
            self.object_value_bytes_max as u64,
            1,
            OBJECT_VALUE_BYTES_MAX as u64,
        )?;
        Ok(ValidConfig {
            config: self.clone(),
            sizes,
        })
    }
}

fn check_range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::new(field, value, format!("{min} ..= {max}")))
    }
}

/// A configuration field with a value outside its allowed range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} = {value} is out of range: allowed {allowed}")]
pub struct ConfigError {
    /// The field, as named in [`ClusterConfig`] (`mode.u` for the mode's `u`).
    pub field: &'static str,
    /// The value given.
    pub value: String,
    /// The allowed range.
    pub allowed: String,
}

impl ConfigError {
    /// An error for `field`, whose `value` is outside `allowed`. Crates that add their own
    /// settings (a node's thread count, a simulator's fault rates) report them the same way.
    pub fn new(field: &'static str, value: impl ToString, allowed: impl Into<String>) -> Self {
        Self {
            field,
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }
}

/// The cluster sizes derived from the mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumSizes {
    /// Execution replicas: `u + max(u, r) + 1` (2 in primary-backup).
    pub n_exec: usize,
    /// Matching tokens a verifier needs before it proposes a token: `max(u, r) + 1`
    /// (both tokens in primary-backup).
    pub token_quorum: usize,
    /// Verifiers: `2u + r + 1` (none in primary-backup).
    pub n_ver: usize,
    /// Verifier quorum for prepare and commit: `u + r + 1` (none in primary-backup).
    pub verifier_quorum: usize,
    /// Matching replies a client waits for, and matching `Verified` messages an execution
    /// replica waits for: `r + 1`.
    pub client_reply_quorum: usize,
}

impl QuorumSizes {
    /// The sizes of an asynchronous Eve cluster.
    pub fn eve(u: u32, r: u32) -> Self {
        let (u, r) = (u as usize, r as usize);
        Self {
            n_exec: u + u.max(r) + 1,
            token_quorum: u.max(r) + 1,
            n_ver: 2 * u + r + 1,
            verifier_quorum: u + r + 1,
            client_reply_quorum: r + 1,
        }
    }

    /// The sizes of a primary-backup pair.
    pub fn primary_backup() -> Self {
        Self {
            n_exec: 2,
            token_quorum: 2,
            n_ver: 0,
            verifier_quorum: 0,
            client_reply_quorum: 1,
        }
    }
}

/// A configuration that passed [`ClusterConfig::validate`], with its derived sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidConfig {
    config: ClusterConfig,
    sizes: QuorumSizes,
}

impl ValidConfig {
    /// The validated fields.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// The derived cluster sizes.
    pub fn sizes(&self) -> QuorumSizes {
        self.sizes
    }
}

impl std::ops::Deref for ValidConfig {
    type Target = ClusterConfig;

    fn deref(&self) -> &ClusterConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eve(u: u32, r: u32) -> ClusterConfig {
        ClusterConfig::new(ReplicationMode::Eve { u, r })
    }

    #[test]
    fn sizes_follow_the_paper_table() {
        // PROTOCOL.md, "Fault model and sizes".
        let s = eve(1, 0).validate().unwrap().sizes();
        assert_eq!(
            (
                s.n_exec,
                s.token_quorum,
                s.n_ver,
                s.verifier_quorum,
                s.client_reply_quorum
            ),
            (3, 2, 3, 2, 1)
        );
        let s = eve(1, 1).validate().unwrap().sizes();
        assert_eq!(
            (
                s.n_exec,
                s.token_quorum,
                s.n_ver,
                s.verifier_quorum,
                s.client_reply_quorum
            ),
            (3, 2, 4, 3, 2)
        );
        let s = eve(2, 0).validate().unwrap().sizes();
        assert_eq!(
            (
                s.n_exec,
                s.token_quorum,
                s.n_ver,
                s.verifier_quorum,
                s.client_reply_quorum
            ),
            (5, 3, 5, 3, 1)
        );
        let s = ClusterConfig::new(ReplicationMode::PrimaryBackup)
            .validate()
            .unwrap()
            .sizes();
        assert_eq!((s.n_exec, s.n_ver, s.client_reply_quorum), (2, 0, 1));
    }

    #[test]
    fn u_zero_is_refused() {
        let err = eve(0, 0).validate().unwrap_err();
        assert_eq!(err.field, "mode.u");
        assert_eq!(err.allowed, format!("1 ..= {FAULTS_U_MAX}"));
    }

    #[test]
    fn r_above_u_is_refused() {
        let err = eve(1, 2).validate().unwrap_err();
        assert_eq!(err.field, "mode.r");
    }

    #[test]
    fn each_numeric_field_is_range_checked() {
        type Breaker = Box<dyn Fn(&mut ClusterConfig)>;
        let cases: Vec<(&str, Breaker)> = vec![
            ("batch_requests_max", Box::new(|c| c.batch_requests_max = 0)),
            (
                "batch_requests_max",
                Box::new(|c| c.batch_requests_max = BATCH_REQUESTS_MAX + 1),
            ),
            ("batch_timeout_ms", Box::new(|c| c.batch_timeout_ms = 0)),
            ("pipeline_depth", Box::new(|c| c.pipeline_depth = 0)),
            (
                "pipeline_depth",
                Box::new(|c| c.pipeline_depth = PIPELINE_DEPTH_MAX + 1),
            ),
            (
                "checkpoint_interval",
                Box::new(|c| c.checkpoint_interval = 0),
            ),
            (
                "verify_timeout_ms",
                Box::new(|c| c.verify_timeout_ms = TIMEOUT_MS_MAX + 1),
            ),
            (
                "client_retransmit_ms",
                Box::new(|c| c.client_retransmit_ms = 0),
            ),
            ("backup_timeout_ms", Box::new(|c| c.backup_timeout_ms = 0)),
            ("merkle_bucket_bits", Box::new(|c| c.merkle_bucket_bits = 3)),
            (
                "merkle_bucket_bits",
                Box::new(|c| c.merkle_bucket_bits = 23),
            ),
            (
                "object_value_bytes_max",
                Box::new(|c| c.object_value_bytes_max = 0),
            ),
        ];
        for (field, break_it) in cases {
            let mut config = eve(1, 0);
            break_it(&mut config);
            let err = config.validate().unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert!(err.to_string().starts_with(field));
        }
    }

    #[test]
    fn defaults_are_valid_for_every_mode() {
        for mode in [
            ReplicationMode::Eve { u: 1, r: 0 },
            ReplicationMode::Eve { u: 1, r: 1 },
            ReplicationMode::Eve { u: 2, r: 0 },
            ReplicationMode::Eve { u: 2, r: 2 },
            ReplicationMode::PrimaryBackup,
        ] {
            ClusterConfig::new(mode).validate().unwrap();
        }
    }
}
