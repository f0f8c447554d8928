//! Which template is emulated, with which parameter values.

use std::path::PathBuf;

use clap::Args;

use crate::cli_values::parameter;

/// The template. Both fields are `roomcast dev` flags.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct TemplateOptions {
    /// The SAM template to emulate.
    #[arg(long, default_value = "template.yaml")]
    pub template: PathBuf,
    /// Template parameters in place of their defaults, as SAM's flag:
    /// `--parameter-overrides FanoutInlineMax=50 PresenceMax=20`.
    #[arg(long, num_args = 1.., value_parser = parameter)]
    pub parameter_overrides: Vec<(String, String)>,
}

impl Default for TemplateOptions {
    fn default() -> Self {
        Self {
            template: PathBuf::from("template.yaml"),
            parameter_overrides: Vec::new(),
        }
    }
}
