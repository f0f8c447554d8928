//! What kind of template this is, for the banner and `/_roomcast/info`:
//! Roomcast's own (its handlers, its dev tokens and demo make sense) or a
//! team's own functions (node-chat, python-chat), and whether Roomcast's
//! events are on.

use super::{Template, TemplateError};

/// The variable by which Roomcast's functions learn their event bus
/// (template.yaml's `EventBusName`); empty turns events off.
const EVENT_BUS_VARIABLE: &str = "ROOMCAST_EVENT_BUS";

/// The template's kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Roomcast's own functions (a `BuildProperties.Binary` that is one of
    /// its handlers), with the bus its events go to, `None` when off.
    Roomcast {
        /// `EventBusName`, when not empty.
        event_bus: Option<String>,
    },
    /// A team's own functions: Roomcast's token, demo and events mean
    /// nothing to them.
    Foreign,
}

impl Template {
    /// Which kind of template this is; `plugged` are the binary names the
    /// plug-ins provide (Roomcast's own functions, handed in at start-up, so
    /// that the template reader depends on neither Lambda nor Roomcast).
    pub fn profile(&self, plugged: &[String]) -> Result<Profile, TemplateError> {
        let functions = self.functions()?;
        if !functions.iter().any(|f| plugged.contains(&f.binary)) {
            return Ok(Profile::Foreign);
        }
        let event_bus = functions
            .iter()
            .filter_map(|f| f.environment.get(EVENT_BUS_VARIABLE))
            .find(|bus| !bus.is_empty())
            .cloned();
        Ok(Profile::Roomcast { event_bus })
    }
}
