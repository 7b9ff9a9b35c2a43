//! `paxoskv viz`: a trace as a space-time diagram in one self-contained
//! HTML file. [`model`] digests the trace in Rust; the page's script
//! (`src/viz/*.js`, embedded with `include_str!`) draws it on a canvas.

mod arrows;
pub mod model;
mod page;
mod spans;
#[cfg(test)]
mod tests;

pub use model::{build, Model};
pub use page::render_html;
