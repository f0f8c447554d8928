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
    /// Which kind of template this is; `handlers` are the binary names of
    /// Roomcast's own functions (the Lambda registry's, passed in so that
    /// the template reader does not depend on the Lambda service).
    pub fn profile(&self, handlers: &[&str]) -> Result<Profile, TemplateError> {
        let functions = self.functions()?;
        if !functions
            .iter()
            .any(|f| handlers.contains(&f.binary.as_str()))
        {
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
