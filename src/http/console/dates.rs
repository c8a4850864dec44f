//! Dates as the console shows them and reads them. Pages show times in the bank's
//! zone (`[console] time_zone`, Asia/Tehran by default): in Persian as a Jalali
//! date with Persian digits (`۱۴۰۵/۰۹/۱۵ ۰۹:۴۵:۱۲`), in English as a Gregorian one
//! (`2026-12-06 09:45:12`). The audit search reads a day of that zone, typed in
//! either calendar. The CSV export keeps UTC (`utc`), for machines.
//!
//! jiff does the zone (its bundled tz database, so a slim image without
//! /usr/share/zoneinfo still knows Asia/Tehran); icu_calendar does the Jalali
//! (Solar Hijri) arithmetic.

use icu_calendar::cal::Persian;
use icu_calendar::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use otpgw_rules::vocab::Language;

/// How one clerk's pages write times.
#[derive(Clone)]
pub struct Dates {
    jalali: bool,
    zone: TimeZone,
}

impl Dates {
    pub fn new(lang: Language, zone: TimeZone) -> Self {
        Self {
            jalali: lang == Language::Fa,
            zone,
        }
    }

    /// Epoch milliseconds as this clerk reads them.
    pub fn show(&self, ms: i64) -> String {
        let Ok(ts) = Timestamp::from_millisecond(ms) else {
            return utc(ms);
        };
        let z = ts.to_zoned_datetime(self.zone.clone());
        let (y, m, d) = (i32::from(z.year()), z.month() as u8, z.day() as u8);
        let clock = format!("{:02}:{:02}:{:02}", z.hour(), z.minute(), z.second());
        if !self.jalali {
            return format!("{y:04}-{m:02}-{d:02} {clock}");
        }
        match Date::try_new_iso(y, m, d) {
            Ok(iso) => {
                let j = iso.to_calendar(Persian::new());
                let text = format!(
                    "{:04}/{:02}/{:02} {clock}",
                    j.year().extended_year(),
                    j.month().ordinal,
                    j.day_of_month().0
                );
                persian_digits(&text)
            }
            Err(_) => format!("{y:04}-{m:02}-{d:02} {clock}"),
        }
    }

    /// The zone's name, for the line that says which zone the times are in.
    pub fn zone_name(&self) -> &str {
        self.zone.iana_name().unwrap_or("UTC")
    }

    /// A day typed in the audit search (`YYYY-MM-DD` or `YYYY/MM/DD`, Gregorian, or
    /// Jalali when the year is below 1700; Persian digits too) as the epoch
    /// milliseconds of its first moment in the zone.
    pub fn day_start(&self, typed: &str) -> Option<i64> {
        self.start_of(day(typed)?)
    }

    /// The first moment of the day after the typed one: the end of a search that
    /// includes the typed day (not 24 hours on, which a DST change would miss).
    pub fn day_end(&self, typed: &str) -> Option<i64> {
        self.start_of(day(typed)?.tomorrow().ok()?)
    }

    fn start_of(&self, day: jiff::civil::Date) -> Option<i64> {
        let start = day.to_zoned_datetime(self.zone.clone()).ok()?;
        Some(start.timestamp().as_millisecond())
    }
}

/// A typed day as a civil date (see `Dates::day_start`).
fn day(typed: &str) -> Option<jiff::civil::Date> {
    {
        let ascii: String = typed.trim().chars().map(ascii_digit).collect();
        let mut parts = ascii.split(['-', '/']);
        let y: i32 = parts.next()?.parse().ok()?;
        let m: u8 = parts.next()?.parse().ok()?;
        let d: u8 = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        let (y, m, d) = if (1..1700).contains(&y) {
            let iso = Date::try_new_persian(y, m, d)
                .ok()?
                .to_calendar(icu_calendar::Iso);
            (
                iso.year().extended_year(),
                iso.month().ordinal,
                iso.day_of_month().0,
            )
        } else {
            (y, m, d)
        };
        if !(1970..=9999).contains(&y) {
            return None;
        }
        jiff::civil::Date::new(i16::try_from(y).ok()?, m as i8, d as i8).ok()
    }
}

/// Epoch milliseconds as `YYYY-MM-DD HH:MM:SS` UTC (the CSV export).
pub fn utc(ms: i64) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        Err(_) => ms.to_string(),
    }
}

/// ASCII digits as Persian ones (۰۱۲۳۴۵۶۷۸۹); everything else as it is.
pub fn persian_digits(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) if c.is_ascii_digit() => char::from_u32(0x06F0 + d).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// A Persian or Arabic-Indic digit as its ASCII one; everything else as it is.
fn ascii_digit(c: char) -> char {
    match c {
        '۰'..='۹' => char::from_u32(u32::from('0') + (c as u32 - 0x06F0)).unwrap_or(c),
        '٠'..='٩' => char::from_u32(u32::from('0') + (c as u32 - 0x0660)).unwrap_or(c),
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tehran(lang: Language) -> Dates {
        Dates::new(lang, TimeZone::get("Asia/Tehran").unwrap())
    }

    #[test]
    fn persian_pages_show_jalali_dates_in_tehran_with_persian_digits() {
        // 2026-11-21 05:28:31 UTC is 08:58:31 in Tehran (UTC+03:30), 30 Aban 1405.
        let ms = 1_795_238_911_512;
        assert_eq!(tehran(Language::Fa).show(ms), "۱۴۰۵/۰۸/۳۰ ۰۸:۵۸:۳۱");
        assert_eq!(tehran(Language::En).show(ms), "2026-11-21 08:58:31");
        assert_eq!(utc(ms), "2026-11-21 05:28:31");
        // Nowruz: 1 Farvardin 1405 is 2026-03-21.
        let nowruz = tehran(Language::Fa).day_start("1405/01/01").unwrap();
        assert_eq!(tehran(Language::En).show(nowruz), "2026-03-21 00:00:00");
        assert_eq!(tehran(Language::Fa).show(nowruz), "۱۴۰۵/۰۱/۰۱ ۰۰:۰۰:۰۰");
    }

    #[test]
    fn days_are_read_in_either_calendar_and_in_the_zone() {
        let d = tehran(Language::En);
        let gregorian = d.day_start("2026-11-21").unwrap();
        assert_eq!(d.day_start("۱۴۰۵/۰۸/۳۰"), Some(gregorian));
        assert_eq!(d.day_start("1405-08-30"), Some(gregorian));
        // Midnight in Tehran is 20:30 UTC the day before.
        assert_eq!(utc(gregorian), "2026-11-20 20:30:00");
        assert_eq!(d.day_end("2026-11-21"), Some(gregorian + 24 * 3600 * 1000));
        for bad in ["nonsense", "2026-13-01", "1405/13/01", "2026-11-21-1", ""] {
            assert_eq!(d.day_start(bad), None, "{bad}");
        }
    }
}
