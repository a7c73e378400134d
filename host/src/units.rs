//! Sizes, durations and keys as people read and write them: parsing `"512MiB"` and `"30s"`
//! (settings, `cachehost.toml`, flags), and formatting sizes, durations, ages and short keys
//! for messages and the cache commands.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// How many characters of a long hex key or digest are shown; `cache show` and `cache rm`
/// accept such a prefix.
pub const SHORT_KEY_LEN: usize = 16;

/// `"512MiB"`, `"64MB"`, `"1GiB"`, `"100KiB"`, `"10B"` or a plain number of bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let unit: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(unit)
}

/// Parses `"500ms"`, `"30s"`, `"5m"`, `"1h"` or `"2d"`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let seconds_per_unit = match unit.trim() {
        "ms" => return Some(Duration::from_millis(number)),
        "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        "d" => 24 * 60 * 60,
        _ => return None,
    };
    number.checked_mul(seconds_per_unit).map(Duration::from_secs)
}

/// A duration as [`parse_duration`] reads it, or a plain number of seconds.
pub fn parse_duration_or_seconds(text: &str) -> Option<Duration> {
    match text.trim().parse::<u64>() {
        Ok(seconds) => Some(Duration::from_secs(seconds)),
        Err(_) => parse_duration(text),
    }
}

/// A size for messages: `512 MiB`, or bytes when it is not a whole number of KiB/MiB/GiB.
pub fn size_text(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}

/// A duration for messages: `2s`, `1.5s`, `250ms`.
pub fn duration_text(duration: Duration) -> String {
    if duration.subsec_millis() == 0 && duration.as_secs() > 0 {
        format!("{}s", duration.as_secs())
    } else if duration.as_secs() == 0 {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}s", duration.as_secs_f64())
    }
}

/// A size for tables, rounded to one decimal: `512 B`, `1.2 KiB`, `3.0 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut size = bytes as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
}

/// A span in its largest whole unit: `45s`, `3m`, `2h`, `5d`.
pub fn human_span(ms: i64) -> String {
    let seconds = ms.unsigned_abs() / 1000;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86_400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// `3m ago` for a past time, `in 3m` for a future one (Unix milliseconds).
pub fn relative(at_ms: i64, now_ms: i64) -> String {
    if at_ms <= now_ms {
        format!("{} ago", human_span(now_ms - at_ms))
    } else {
        format!("in {}", human_span(at_ms - now_ms))
    }
}

/// A duration in milliseconds for people: `420 µs`, `12.5 ms`, `3.2 s`.
pub fn millis_text(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0} µs", ms * 1e3)
    } else if ms < 10_000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.1} s", ms / 1e3)
    }
}

/// A long hex key or digest cut to [`SHORT_KEY_LEN`] characters; any other key whole.
pub fn short_key(key: &str) -> &str {
    if key.len() > SHORT_KEY_LEN && key.chars().all(|c| c.is_ascii_hexdigit()) {
        &key[..SHORT_KEY_LEN]
    } else {
        key
    }
}

/// A size in TOML: an integer of bytes or a size string.
pub fn deserialize_size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Bytes(bytes) => Ok(Some(bytes)),
        Raw::Text(text) => parse_size(&text).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid size {text:?}: expected bytes or a size like \"512MiB\", \"64MB\" or \"1GiB\""
            ))
        }),
    }
}

/// A timeout or retry delay in TOML: a duration string or an integer of seconds.
pub fn deserialize_timeout<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Fraction(f64),
        Text(String),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Seconds(seconds) => Ok(Some(Duration::from_secs(seconds))),
        Raw::Fraction(seconds) if seconds >= 0.0 && seconds.is_finite() => Ok(Some(Duration::from_secs_f64(seconds))),
        Raw::Fraction(seconds) => {
            Err(serde::de::Error::custom(format!("invalid duration {seconds}: it must not be negative")))
        }
        Raw::Text(text) => parse_duration(&text).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?}: expected a duration like \"500ms\", \"30s\", \"5m\", or seconds"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("64MB"), Some(64_000_000));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("10 KiB"), Some(10 << 10));
        for bad in ["", "MiB", "1.5MiB", "-1", "5 TB", "99999999999999999999GiB"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        assert_eq!(size_text(512 << 20), "512 MiB");
        assert_eq!(size_text(1000), "1000 bytes");
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1229), "1.2 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn ages_use_the_largest_unit() {
        assert_eq!(relative(1_000, 181_000), "3m ago");
        assert_eq!(relative(5_000, 4_000), "in 1s");
        assert_eq!(relative(0, 59_999), "59s ago");
        assert_eq!(relative(0, 2 * 86_400_000), "2d ago");
    }

    #[test]
    fn only_long_hex_keys_are_shortened() {
        let digest = "0123456789abcdef0123456789abcdef";
        assert_eq!(short_key(digest), &digest[..SHORT_KEY_LEN]);
        assert_eq!(short_key("my-key-that-is-long-but-not-hex"), "my-key-that-is-long-but-not-hex");
        assert_eq!(short_key("abc"), "abc");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        for bad in ["", "5", "m", "1.5h", "-1s", "5 weeks", "1h30m", "99999999999999999999s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
