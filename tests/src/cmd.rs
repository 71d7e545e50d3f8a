//! Running a set-up command (`ip`, `ip netns exec …`, a server's control tool) whose failure
//! means the test cannot go on: its output on success, a complete error otherwise.

use std::process::Command;

/// A command that could not run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// The program could not be started (missing: `ci/deps.sh` installs what tests use).
    #[error("{cmd}: {source}: run `bash ci/deps.sh` as root first")]
    Spawn {
        /// The command line.
        cmd: String,
        /// The spawn error.
        source: std::io::Error,
    },
    /// It ran and failed.
    #[error("{cmd}: {status}\n{stdout}{stderr}")]
    Failed {
        /// The command line.
        cmd: String,
        /// Its exit status.
        status: String,
        /// What it printed.
        stdout: String,
        /// Its diagnostics.
        stderr: String,
    },
}

/// Runs `cmd` to completion; its standard output when it exits with status 0.
pub fn output(cmd: &mut Command) -> Result<String, CmdError> {
    let line = format!("{cmd:?}");
    let out = cmd.output().map_err(|source| CmdError::Spawn {
        cmd: line.clone(),
        source,
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(CmdError::Failed {
            cmd: line,
            status: out.status.to_string(),
            stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_status_and_missing_programs_are_told_apart() {
        assert_eq!(output(Command::new("echo").arg("hi")).unwrap(), "hi\n");
        let failed = output(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]));
        let text = failed.unwrap_err().to_string();
        assert!(text.contains("exit status: 3") && text.contains("out") && text.contains("err"));
        let missing = output(&mut Command::new("/nonexistent/pshim6-tool"));
        assert!(matches!(missing, Err(CmdError::Spawn { .. })));
    }
}
