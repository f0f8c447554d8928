//! Plug-ins: functions the emulator can run in its own process, handed in
//! at start-up (`EmulatorConfig::plugin`). Nothing in the emulator's
//! services imports them.

pub mod roomcast;
