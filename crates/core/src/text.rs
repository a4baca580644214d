//! Numbers as people write them, for tables, legends and axis ticks (shared by the sweep
//! tables and the charts, so that a parameter reads the same in both).

/// At most 6 significant digits, no float noise (0.15000000000000002 → 0.15), no ".0" on
/// whole numbers, no "-0".
pub fn number_text(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".into();
    }
    let digits = (6 - 1 - x.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{x:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::number_text;

    #[test]
    fn numbers_read_as_written() {
        assert_eq!(number_text(0.15000000000000002), "0.15");
        assert_eq!(number_text(1000.0), "1000");
        assert_eq!(number_text(12.5), "12.5");
        assert_eq!(number_text(-0.0), "0");
        assert_eq!(number_text(1e-13), "0");
        assert_eq!(number_text(1e-7), "0.0000001");
        assert_eq!(number_text(123456789.0), "123456789");
    }
}
