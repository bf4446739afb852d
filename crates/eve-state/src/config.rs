//! The state store's settings.

use eve_types::limits::{MERKLE_BUCKET_BITS_MAX, MERKLE_BUCKET_BITS_MIN, OBJECT_VALUE_BYTES_MAX};
use eve_types::{ConfigError, ValidConfig};

/// How a [`StateStore`](crate::StateStore) is shaped. Every replica of a cluster must use the
/// same `bucket_bits`, since it shapes the Merkle root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateConfig {
    bucket_bits: u8,
    value_bytes_max: usize,
}

impl StateConfig {
    /// A configuration with `2^bucket_bits` Merkle buckets and values of at most
    /// `value_bytes_max` bytes, checked against the limits of [`eve_types::limits`].
    pub fn new(bucket_bits: u8, value_bytes_max: usize) -> Result<Self, ConfigError> {
        if !(MERKLE_BUCKET_BITS_MIN..=MERKLE_BUCKET_BITS_MAX).contains(&bucket_bits) {
            return Err(ConfigError::new(
                "merkle_bucket_bits",
                bucket_bits,
                format!("{MERKLE_BUCKET_BITS_MIN} ..= {MERKLE_BUCKET_BITS_MAX}"),
            ));
        }
        if !(1..=OBJECT_VALUE_BYTES_MAX).contains(&value_bytes_max) {
            return Err(ConfigError::new(
                "object_value_bytes_max",
                value_bytes_max,
                format!("1 ..= {OBJECT_VALUE_BYTES_MAX}"),
            ));
        }
        Ok(Self {
            bucket_bits,
            value_bytes_max,
        })
    }

    /// The state settings of a validated cluster configuration.
    pub fn from_cluster(config: &ValidConfig) -> Self {
        Self {
            bucket_bits: config.merkle_bucket_bits,
            value_bytes_max: config.object_value_bytes_max,
        }
    }

    /// The tree has `2^bucket_bits` buckets.
    pub fn bucket_bits(&self) -> u8 {
        self.bucket_bits
    }

    /// The largest value accepted for application objects, in bytes.
    pub fn value_bytes_max(&self) -> usize {
        self.value_bytes_max
    }

    /// The largest value accepted under `key`: `value_bytes_max` for application objects, and
    /// [`OBJECT_VALUE_BYTES_MAX`] for eve's own objects (the reply cache), which must fit
    /// however small the application's limit is.
    pub fn value_limit_for(&self, key: &[u8]) -> usize {
        if crate::store::is_system_key(key) {
            OBJECT_VALUE_BYTES_MAX
        } else {
            self.value_bytes_max
        }
    }
}

impl Default for StateConfig {
    /// 2^16 buckets (about 16 objects per bucket at a million objects), values up to 1 MiB.
    fn default() -> Self {
        Self {
            bucket_bits: 16,
            value_bytes_max: 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_settings_name_their_field() {
        assert_eq!(
            StateConfig::new(3, 10).unwrap_err().field,
            "merkle_bucket_bits"
        );
        assert_eq!(
            StateConfig::new(8, OBJECT_VALUE_BYTES_MAX + 1)
                .unwrap_err()
                .field,
            "object_value_bytes_max"
        );
        assert!(StateConfig::new(8, 10).is_ok());
    }
}
