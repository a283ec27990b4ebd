//! The shared secret that authenticates sync datagrams.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256, the MAC of every datagram.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Shortest secret accepted: 16 bytes (128 bits when random).
pub const MIN_KEY_LEN: usize = 16;

/// Longest key file read; a longer one is refused rather than read whole
/// (a key path mistyped as a log file or `/dev/zero` must not hang the daemon).
pub const MAX_KEY_FILE_LEN: usize = 4096;

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be opened or read.
    #[error("sync key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The secret is shorter than [`MIN_KEY_LEN`].
    #[error("sync key{} is {len} bytes, at least {MIN_KEY_LEN} are required", in_file(.path))]
    TooShort {
        /// Its length (after trimming the trailing newline of a file).
        len: usize,
        /// The file it came from, if any.
        path: Option<PathBuf>,
    },
    /// The key file is longer than [`MAX_KEY_FILE_LEN`].
    #[error("sync key file {path} is longer than {MAX_KEY_FILE_LEN} bytes: not a key file")]
    TooLong {
        /// The file.
        path: PathBuf,
    },
}

/// A sync secret, held as a keyed HMAC-SHA256 state.
///
/// Masters and backups of one cluster load the same secret. The secret's
/// bytes are used as they are (a hex or base64 text key is not decoded: its
/// text is the secret, which is fine as long as it is long and random,
/// e.g. `openssl rand -hex 32`).
///
/// The keyed state (the HMAC inner and outer pads, already hashed) is
/// cloned for every datagram, so signing costs no key setup. `Debug` does not
/// print the secret.
#[derive(Clone)]
pub struct Key {
    mac: HmacSha256,
}

impl Key {
    /// A key from the secret's bytes; at least [`MIN_KEY_LEN`] of them.
    pub fn from_bytes(secret: &[u8]) -> Result<Key, KeyError> {
        if secret.len() < MIN_KEY_LEN {
            return Err(KeyError::TooShort {
                len: secret.len(),
                path: None,
            });
        }
        Ok(Key::new_unchecked(secret))
    }

    /// A key from a file holding the secret. One trailing newline (`\n` or
    /// `\r\n`) is removed, so `echo`ed and editor-written files work; the
    /// rest must be at least [`MIN_KEY_LEN`] bytes. The file should be
    /// readable by root only (`0600`): whoever reads it can forge sync
    /// messages.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Key, KeyError> {
        let path = path.as_ref();
        let read_err = |source| KeyError::Read {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut buf = Vec::with_capacity(256);
        file.take(MAX_KEY_FILE_LEN as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(read_err)?;
        if buf.len() > MAX_KEY_FILE_LEN {
            return Err(KeyError::TooLong {
                path: path.to_owned(),
            });
        }
        let secret = trim_newline(&buf);
        if secret.len() < MIN_KEY_LEN {
            return Err(KeyError::TooShort {
                len: secret.len(),
                path: Some(path.to_owned()),
            });
        }
        let key = Key::new_unchecked(secret);
        buf.fill(0);
        Ok(key)
    }

    fn new_unchecked(secret: &[u8]) -> Key {
        Key {
            // HMAC takes keys of any length (longer ones are hashed first).
            mac: HmacSha256::new_from_slice(secret)
                .unwrap_or_else(|_| unreachable!("HMAC accepts any key length")),
        }
    }

    /// A fresh MAC state keyed with this secret.
    #[inline]
    pub(crate) fn mac(&self) -> HmacSha256 {
        self.mac.clone()
    }

    /// A short, one-way fingerprint of the key (the first 4 bytes of
    /// HMAC(key, `"xvs-sync key fingerprint"`)), for logs: two directors
    /// with different fingerprints will reject each other's datagrams.
    pub fn fingerprint(&self) -> u32 {
        let mut mac = self.mac();
        mac.update(b"xvs-sync key fingerprint");
        let out = mac.finalize().into_bytes();
        u32::from_be_bytes([out[0], out[1], out[2], out[3]])
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(fingerprint {:08x})", self.fingerprint())
    }
}

/// ` file <path>` for [`KeyError::TooShort`]'s message.
fn in_file(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!(" file {}", p.display()))
        .unwrap_or_default()
}

/// The secret without one trailing `\n` or `\r\n`.
fn trim_newline(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r\n")
        .or_else(|| b.strip_suffix(b"\n"))
        .unwrap_or(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A file in the temporary directory, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn with(content: &[u8]) -> TempFile {
            static N: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "xvs-sync-key-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, content).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn same_key(a: &Key, b: &Key) -> bool {
        a.fingerprint() == b.fingerprint()
    }

    #[test]
    fn short_keys_refused() {
        assert!(matches!(
            Key::from_bytes(b"fifteen bytes!!"),
            Err(KeyError::TooShort { len: 15, .. })
        ));
        assert!(Key::from_bytes(b"sixteen bytes!!!").is_ok());
        assert!(matches!(
            Key::from_bytes(b""),
            Err(KeyError::TooShort { len: 0, .. })
        ));
    }

    #[test]
    fn file_trailing_newline_trimmed() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let want = Key::from_bytes(secret).unwrap();
        for content in [
            secret.to_vec(),
            [&secret[..], b"\n"].concat(),
            [&secret[..], b"\r\n"].concat(),
        ] {
            let f = TempFile::with(&content);
            assert!(same_key(&Key::from_file(&f.0).unwrap(), &want));
        }
        // Only one newline goes: a second one is part of the secret.
        let f = TempFile::with(&[&secret[..], b"\n\n"].concat());
        assert!(!same_key(&Key::from_file(&f.0).unwrap(), &want));
    }

    #[test]
    fn file_errors_are_clear() {
        // Sixteen bytes only counting the newline: refused, naming the file.
        let f = TempFile::with(b"fifteen bytes!!\n");
        let err = Key::from_file(&f.0).unwrap_err();
        assert!(matches!(err, KeyError::TooShort { len: 15, .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&f.0.display().to_string()), "{msg}");
        assert!(msg.contains("at least 16"), "{msg}");

        let f = TempFile::with(b"");
        assert!(matches!(
            Key::from_file(&f.0),
            Err(KeyError::TooShort { len: 0, .. })
        ));

        let missing = std::env::temp_dir().join("xvs-sync-no-such-key-file");
        let err = Key::from_file(&missing).unwrap_err();
        assert!(matches!(err, KeyError::Read { .. }));
        assert!(err.to_string().contains("xvs-sync-no-such-key-file"));

        let f = TempFile::with(&[b'k'; MAX_KEY_FILE_LEN + 1]);
        assert!(matches!(
            Key::from_file(&f.0),
            Err(KeyError::TooLong { .. })
        ));
        let f = TempFile::with(&[b'k'; MAX_KEY_FILE_LEN]);
        assert!(Key::from_file(&f.0).is_ok());
    }

    #[test]
    fn debug_hides_the_secret() {
        let k = Key::from_bytes(b"super secret key material").unwrap();
        let s = format!("{k:?}");
        assert!(!s.contains("secret"), "{s}");
        assert!(s.starts_with("Key(fingerprint "), "{s}");
        let other = Key::from_bytes(b"other secret key material").unwrap();
        assert_ne!(k.fingerprint(), other.fingerprint());
    }
}
