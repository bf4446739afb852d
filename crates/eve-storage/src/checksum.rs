//! A whole file behind a checksum: what a file written at once (a checkpoint, a snapshot)
//! carries, so that a damaged one is told when it is read. The checksum is the blake3 hash
//! of the body, written before it.

/// Bytes of the checksum before the body.
pub const CHECKSUM_BYTES: usize = 32;

/// Why checked bytes are not whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumError {
    /// Fewer bytes than a checksum.
    #[error("it is shorter than its checksum")]
    Short,
    /// The body does not hash to the checksum.
    #[error("its checksum does not match")]
    Mismatch,
}

/// `body` with its checksum before it.
pub fn with_checksum(body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(CHECKSUM_BYTES + body.len());
    bytes.extend_from_slice(blake3::hash(body).as_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// The body of `bytes` written by [`with_checksum`], if it is whole.
pub fn checked(bytes: &[u8]) -> Result<&[u8], ChecksumError> {
    if bytes.len() < CHECKSUM_BYTES {
        return Err(ChecksumError::Short);
    }
    let (sum, body) = bytes.split_at(CHECKSUM_BYTES);
    if blake3::hash(body).as_bytes() != sum {
        return Err(ChecksumError::Mismatch);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_comes_back_whole_and_any_damage_is_told() {
        let bytes = with_checksum(b"a checkpoint");
        assert_eq!(checked(&bytes), Ok(&b"a checkpoint"[..]));
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 1;
            assert_eq!(checked(&damaged), Err(ChecksumError::Mismatch), "byte {at}");
        }
        assert_eq!(checked(&bytes[..10]), Err(ChecksumError::Short));
    }
}
