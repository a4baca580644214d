//! Coracle's reports: SVG charts of sweeps and single runs drawn with `plotters` ([`plot`]), and
//! trace conversion for Perfetto / chrome://tracing and ShiViz ([`trace`]).

pub mod plot;
pub mod trace;
