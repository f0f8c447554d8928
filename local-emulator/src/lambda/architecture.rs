//! A `provided` function's `bootstrap` built for another machine: what
//! `sam build` writes for an `arm64` function on an x86_64 laptop (and the
//! other way round). Lambda runs it on the architecture the template names
//! (Lambda Developer Guide, "Selecting and configuring an instruction set
//! architecture"); a `bootstrap` for the other one fails there to start.
//! Offline it runs under QEMU's user-mode emulator, with the target's C
//! library as its sysroot, so a team rehearses the very artifacts it will
//! deploy.

use std::path::{Path, PathBuf};

use super::launch_error::LaunchError;
use crate::template::FunctionSpec;

/// The ELF machines Lambda offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Machine {
    X86_64,
    Aarch64,
}

impl Machine {
    /// The template's name for it (`Architectures`).
    fn lambda_name(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Aarch64 => "arm64",
        }
    }

    /// This machine's.
    fn host() -> Option<Self> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Self::X86_64),
            "aarch64" => Some(Self::Aarch64),
            _ => None,
        }
    }

    /// QEMU's user-mode emulator for it, and the Debian package of the
    /// target's C library (its sysroot for a dynamically linked program).
    fn qemu(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::X86_64 => ("qemu-x86_64", "/usr/x86-64-linux-gnu", "libc6-amd64-cross"),
            Self::Aarch64 => (
                "qemu-aarch64",
                "/usr/aarch64-linux-gnu",
                "libc6-arm64-cross",
            ),
        }
    }
}

/// The machine an ELF file is built for (`e_machine`, bytes 18–19 of the
/// header, little-endian); `None` for anything else (a script).
pub(crate) fn elf_machine(header: &[u8]) -> Option<Machine> {
    if header.get(..4)? != b"\x7fELF" {
        return None;
    }
    match u16::from_le_bytes([*header.get(18)?, *header.get(19)?]) {
        0x3e => Some(Machine::X86_64),
        0xb7 => Some(Machine::Aarch64),
        _ => None,
    }
}

/// How to run `program` here: itself, or under QEMU when it is built for
/// another machine. A `bootstrap` whose machine is not the one the
/// template's `Architectures` names is refused, as Lambda would fail to
/// start it.
pub(crate) fn runner(
    spec: &FunctionSpec,
    program: PathBuf,
) -> Result<(PathBuf, Vec<String>), LaunchError> {
    let mut header = [0u8; 20];
    let read = std::fs::File::open(&program)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut header))
        .unwrap_or(0);
    let Some(machine) = elf_machine(&header[..read]) else {
        return Ok((program, Vec::new()));
    };
    if machine.lambda_name() != spec.architecture {
        return Err(LaunchError::Architecture {
            function: spec.logical_id.clone(),
            path: program.display().to_string(),
            built_for: machine.lambda_name(),
            architecture: spec.architecture.clone(),
        });
    }
    if Machine::host() == Some(machine) {
        return Ok((program, Vec::new()));
    }
    let (qemu, sysroot, libc) = machine.qemu();
    let found = on_path(qemu).or_else(|| on_path(&format!("{qemu}-static")));
    let Some(qemu_path) = found else {
        return Err(LaunchError::Emulator {
            function: spec.logical_id.clone(),
            built_for: machine.lambda_name(),
            hint: format!(
                "install QEMU's user-mode emulator and the target's C library (Debian: apt-get install qemu-user {libc})"
            ),
        });
    };
    let mut args = Vec::new();
    if Path::new(sysroot).is_dir() {
        args.extend(["-L".to_owned(), sysroot.to_owned()]);
    }
    args.push(program.display().to_string());
    Ok((qemu_path, args))
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_headers_name_their_machine() {
        let mut header = *b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\0\0";
        header[18] = 0xb7;
        assert_eq!(elf_machine(&header), Some(Machine::Aarch64));
        header[18] = 0x3e;
        assert_eq!(elf_machine(&header), Some(Machine::X86_64));
        header[18] = 0x28;
        assert_eq!(
            elf_machine(&header),
            None,
            "32-bit ARM: not a Lambda machine"
        );
        assert_eq!(elf_machine(b"#!/usr/bin/env python3\n"), None);
        assert_eq!(elf_machine(b"\x7fEL"), None);
    }

    #[test]
    fn a_bootstrap_for_another_architecture_than_the_templates_is_refused() {
        let dir = std::env::temp_dir().join(format!("roomcast-arch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let program = dir.join("bootstrap");
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(b"\x7fELF");
        header[18] = match Machine::host() {
            Some(Machine::Aarch64) => 0x3e,
            _ => 0xb7,
        };
        std::fs::write(&program, &header).unwrap();
        let built_for = elf_machine(&header).unwrap().lambda_name();
        let mut spec = FunctionSpec {
            logical_id: "F".into(),
            binary: String::new(),
            function_name: "F".into(),
            runtime: "provided.al2023".into(),
            handler: "bootstrap".into(),
            code_uri: dir.display().to_string(),
            memory_mb: 128,
            reserved_concurrency: None,
            environment: std::collections::BTreeMap::new(),
            timeout_secs: 3,
            architecture: String::new(),
            log_group: "/aws/lambda/fixture".into(),
        };
        spec.architecture = if built_for == "arm64" {
            "x86_64"
        } else {
            "arm64"
        }
        .into();
        let err = runner(&spec, program.clone()).unwrap_err();
        assert!(matches!(err, LaunchError::Architecture { .. }), "{err}");
        // Named as the template names it, a foreign bootstrap runs under
        // QEMU when QEMU is there, and otherwise says what to install.
        spec.architecture = built_for.into();
        match runner(&spec, program) {
            Ok((qemu, args)) => {
                assert!(qemu.display().to_string().contains("qemu-"), "{qemu:?}");
                assert!(args.last().unwrap().ends_with("bootstrap"));
            }
            Err(e) => assert!(e.to_string().contains("apt-get install qemu-user"), "{e}"),
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
