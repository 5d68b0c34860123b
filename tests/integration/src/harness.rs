//! A running QEMU with Anneal on its console: wait for text, send lines, read replies,
//! expect an exit status.
//!
//! Design: a reader thread copies QEMU's stdout into a shared buffer and signals a
//! condition variable; every wait looks for a needle in the part of the buffer that no
//! earlier wait consumed, with a deadline. So a wait never misses output that arrived
//! before it started, and never blocks past its deadline. Every failure carries the tail
//! of the console transcript, so a red test says what the kernel printed. QEMU is killed
//! when the handle drops (test end, panic or timeout): no QEMU outlives its test.

use std::fmt;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::limits;
use crate::qemu::{ConfigError, QemuConfig};

/// The console prompt the kernel prints when it is ready for a line (no newline after it).
pub const PROMPT: &str = "anneal> ";

/// What the boot banner line starts with.
pub const BANNER: &str = "Anneal";

/// Why a harness step failed.
#[derive(Debug)]
pub enum HarnessError {
    /// The configuration cannot run.
    Config(ConfigError),
    /// QEMU could not be started.
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// Writing to QEMU's stdin failed (QEMU has probably exited).
    Send {
        line: String,
        source: std::io::Error,
    },
    /// The awaited text did not appear in time.
    Timeout {
        waiting_for: String,
        after: Duration,
        transcript: String,
    },
    /// QEMU exited (or closed its output) before the awaited text appeared.
    ExitedEarly {
        waiting_for: String,
        status: Option<ExitStatus>,
        transcript: String,
    },
    /// QEMU did not exit in time.
    NoExit { after: Duration, transcript: String },
    /// QEMU exited with a different status than the test expected.
    WrongExitStatus {
        expected: i32,
        actual: Option<i32>,
        transcript: String,
    },
    /// Polling the QEMU process failed.
    Wait(std::io::Error),
}

fn tail(transcript: &str) -> &str {
    if transcript.len() <= limits::TRANSCRIPT_TAIL_BYTES {
        return transcript;
    }
    let mut start = transcript.len() - limits::TRANSCRIPT_TAIL_BYTES;
    while !transcript.is_char_boundary(start) {
        start += 1;
    }
    &transcript[start..]
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::Config(e) => write!(f, "bad QEMU configuration: {e}"),
            HarnessError::Spawn { program, source } => write!(
                f,
                "cannot start {program}: {source} (install QEMU 10: `cargo xtask build` does it)"
            ),
            HarnessError::Send { line, source } => {
                write!(f, "cannot send {line:?} to the console: {source}")
            }
            HarnessError::Timeout { waiting_for, after, transcript } => write!(
                f,
                "no {waiting_for:?} on the console after {:.1} s; console so far (tail):\n{}",
                after.as_secs_f64(),
                tail(transcript)
            ),
            HarnessError::ExitedEarly { waiting_for, status, transcript } => write!(
                f,
                "QEMU ended ({}) before {waiting_for:?} appeared; console (tail):\n{}",
                status.map_or("output closed".to_string(), |s| s.to_string()),
                tail(transcript)
            ),
            HarnessError::NoExit { after, transcript } => write!(
                f,
                "QEMU still running {:.1} s after the kernel should have exited; console (tail):\n{}",
                after.as_secs_f64(),
                tail(transcript)
            ),
            HarnessError::WrongExitStatus { expected, actual, transcript } => write!(
                f,
                "expected exit status {expected}, QEMU ended with {}; console (tail):\n{}",
                actual.map_or("a signal".to_string(), |c| c.to_string()),
                tail(transcript)
            ),
            HarnessError::Wait(e) => write!(f, "cannot poll the QEMU process: {e}"),
        }
    }
}

impl std::error::Error for HarnessError {}

impl From<ConfigError> for HarnessError {
    fn from(e: ConfigError) -> Self {
        HarnessError::Config(e)
    }
}

/// Console output shared between the reader thread and the test.
#[derive(Default)]
struct Output {
    /// Everything QEMU printed, `\r` removed.
    text: String,
    /// The reader saw end of file (QEMU closed stdout, normally by exiting).
    closed: bool,
}

type SharedOutput = Arc<(Mutex<Output>, Condvar)>;

/// A QEMU process running Anneal, console attached to the harness.
pub struct Qemu {
    child: Child,
    stdin: Option<ChildStdin>,
    output: SharedOutput,
    /// Byte offset in the transcript up to which waits have consumed it.
    consumed: usize,
    reader: Option<JoinHandle<()>>,
    command_line: String,
    exit: Option<ExitStatus>,
}

fn lock(output: &SharedOutput) -> std::sync::MutexGuard<'_, Output> {
    // A poisoned lock only means the reader thread panicked mid-append; the text
    // already there is still the best evidence a failing test can show.
    output
        .0
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Qemu {
    /// Starts QEMU with `config` (validated first). Stdout is read by the harness; stderr
    /// is merged into the transcript too, so QEMU's own errors show up in failures.
    pub fn spawn(config: &QemuConfig) -> Result<Qemu, HarnessError> {
        config.validate()?;
        let mut child = Command::new(&config.qemu)
            .args(config.args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                program: config.qemu.display().to_string(),
                source,
            })?;
        let output: SharedOutput = Arc::default();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let reader = stdout.map(|out| spawn_reader(out, Arc::clone(&output), true));
        // Stderr is copied into the same transcript but does not decide end-of-output.
        if let Some(err) = stderr {
            spawn_reader(err, Arc::clone(&output), false);
        }
        Ok(Qemu {
            stdin: child.stdin.take(),
            child,
            output,
            consumed: 0,
            reader,
            command_line: config.command_line(),
            exit: None,
        })
    }

    /// The QEMU command line this instance runs (for messages).
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    /// Everything the console printed so far.
    pub fn transcript(&self) -> String {
        lock(&self.output).text.clone()
    }

    /// Waits until `needle` appears in output not yet consumed; returns the text from the
    /// last consumed point up to and including the needle, and consumes it.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String, HarnessError> {
        let start = Instant::now();
        let deadline = start + timeout;
        let condvar = &self.output.1;
        let mut output = lock(&self.output);
        loop {
            if let Some(found) = output.text[self.consumed..].find(needle) {
                let end = self.consumed + found + needle.len();
                let text = output.text[self.consumed..end].to_string();
                self.consumed = end;
                return Ok(text);
            }
            if output.closed {
                let transcript = output.text.clone();
                drop(output);
                let status = self.child.try_wait().ok().flatten();
                return Err(HarnessError::ExitedEarly {
                    waiting_for: needle.to_string(),
                    status,
                    transcript,
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(HarnessError::Timeout {
                    waiting_for: needle.to_string(),
                    after: now - start,
                    transcript: output.text.clone(),
                });
            }
            let (guard, _) = condvar
                .wait_timeout(output, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            output = guard;
        }
    }

    /// Waits for the banner and the first prompt; returns the boot log (banner included).
    pub fn boot(&mut self) -> Result<String, HarnessError> {
        self.boot_with_timeout(limits::BOOT_TIMEOUT)
    }

    /// [`Qemu::boot`] with an explicit bound.
    pub fn boot_with_timeout(&mut self, timeout: Duration) -> Result<String, HarnessError> {
        let start = Instant::now();
        let before_banner = self.wait_for(BANNER, timeout)?;
        let rest = self.wait_for(PROMPT, timeout.saturating_sub(start.elapsed()))?;
        let log = format!("{before_banner}{rest}");
        Ok(log.strip_suffix(PROMPT).unwrap_or(&log).to_string())
    }

    /// Sends one console line (the harness adds the LF).
    pub fn send_line(&mut self, line: &str) -> Result<(), HarnessError> {
        self.send_bytes(format!("{line}\n").as_bytes())
            .map_err(|source| HarnessError::Send {
                line: line.to_string(),
                source,
            })
    }

    /// Sends raw bytes to the console.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.stdin.as_mut() {
            Some(stdin) => {
                stdin.write_all(bytes)?;
                stdin.flush()
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "console input already closed",
            )),
        }
    }

    /// Closes the console input (end of file for QEMU's stdin).
    pub fn close_input(&mut self) {
        self.stdin = None;
    }

    /// Sends `line` and returns the reply: everything after the echoed line up to the
    /// next prompt (both excluded).
    pub fn command(&mut self, line: &str) -> Result<String, HarnessError> {
        self.command_with_timeout(line, limits::COMMAND_TIMEOUT)
    }

    /// [`Qemu::command`] with an explicit bound, for slow commands.
    pub fn command_with_timeout(
        &mut self,
        line: &str,
        timeout: Duration,
    ) -> Result<String, HarnessError> {
        self.send_line(line)?;
        let text = self.wait_for(PROMPT, timeout)?;
        Ok(reply_of(&text))
    }

    /// Sends `line` and returns everything the console prints until QEMU exits (for
    /// `poweroff` and `fault ...`), checking the exit status.
    pub fn command_expecting_exit(
        &mut self,
        line: &str,
        expected_status: i32,
    ) -> Result<String, HarnessError> {
        let before = self.consumed;
        self.send_line(line)?;
        self.expect_exit(expected_status)?;
        let text = lock(&self.output).text[before..].to_string();
        self.consumed = before + text.len();
        Ok(reply_of(&text))
    }

    /// Waits for QEMU to exit and checks its status.
    pub fn expect_exit(&mut self, expected: i32) -> Result<(), HarnessError> {
        let status = self.wait_exit(limits::EXIT_TIMEOUT)?;
        if status.code() == Some(expected) {
            Ok(())
        } else {
            Err(HarnessError::WrongExitStatus {
                expected,
                actual: status.code(),
                transcript: self.transcript(),
            })
        }
    }

    /// Waits (bounded) for QEMU to exit, then for its output to be fully read.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, HarnessError> {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().map_err(HarnessError::Wait)? {
                break status;
            }
            if start.elapsed() >= timeout {
                return Err(HarnessError::NoExit {
                    after: start.elapsed(),
                    transcript: self.transcript(),
                });
            }
            std::thread::sleep(limits::EXIT_POLL_INTERVAL);
        };
        self.exit = Some(status);
        if let Some(reader) = self.reader.take() {
            // QEMU has exited, so its stdout is closed and the reader ends promptly.
            let _ = reader.join();
        }
        Ok(status)
    }
}

/// Strips the echoed command line (the first line) and a trailing prompt from `text`.
pub fn reply_of(text: &str) -> String {
    let without_prompt = text.strip_suffix(PROMPT).unwrap_or(text);
    match without_prompt.split_once('\n') {
        Some((_echo, rest)) => rest.to_string(),
        None => String::new(),
    }
}

fn spawn_reader<R: Read + Send + 'static>(
    mut source: R,
    output: SharedOutput,
    marks_end: bool,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        // Bytes of an incomplete UTF-8 sequence carried to the next read.
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let count = match source.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buffer[..count]);
            let valid = match std::str::from_utf8(&pending) {
                Ok(s) => s.len(),
                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                Err(_) => pending.len(),
            };
            let chunk = String::from_utf8_lossy(&pending[..valid]).replace('\r', "");
            pending.drain(..valid);
            let (mutex, condvar) = &*output;
            let mut out = mutex.lock().unwrap_or_else(|p| p.into_inner());
            out.text.push_str(&chunk);
            condvar.notify_all();
        }
        if marks_end {
            let (mutex, condvar) = &*output;
            let mut out = mutex.lock().unwrap_or_else(|p| p.into_inner());
            if !pending.is_empty() {
                let rest = String::from_utf8_lossy(&pending).replace('\r', "");
                out.text.push_str(&rest);
            }
            out.closed = true;
            condvar.notify_all();
        }
    })
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.stdin = None;
        if self.exit.is_none() {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn reply_strips_echo_and_prompt() {
        assert_eq!(
            reply_of("info\nboard: x\ncores: 1\nanneal> "),
            "board: x\ncores: 1\n"
        );
        assert_eq!(reply_of("help\nanneal> "), "");
        assert_eq!(reply_of("partial"), "");
    }

    #[test]
    fn transcript_tail_is_bounded_and_on_a_char_boundary() {
        let long = "é".repeat(limits::TRANSCRIPT_TAIL_BYTES);
        let t = tail(&long);
        assert!(t.len() <= limits::TRANSCRIPT_TAIL_BYTES);
        assert!(t.chars().all(|c| c == 'é'));
        assert_eq!(tail("short"), "short");
    }

    /// Runs the harness against a shell script standing in for QEMU: the wait, send and
    /// exit logic is exercised on the host without a kernel.
    fn fake_qemu(script: &str) -> QemuConfig {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "anneal-harness-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("fake-qemu.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("write script");
        // The script ignores the QEMU arguments the harness passes.
        let mut config = QemuConfig::virt(PathBuf::from("/nonexistent/Image"));
        config.qemu = path;
        config
    }

    #[cfg(unix)]
    fn make_executable(config: &QemuConfig) {
        use std::os::unix::fs::PermissionsExt;
        let mut perms = std::fs::metadata(&config.qemu).expect("meta").permissions();
        perms.set_mode(0o755);
        std::fs::set_permissions(&config.qemu, perms).expect("chmod");
    }

    #[cfg(unix)]
    #[test]
    fn drives_a_console_and_sees_the_exit_status() {
        let config = fake_qemu(
            r#"printf 'Anneal fake\r\nanneal> '
while read line; do
  printf '%s\r\n' "$line"
  if [ "$line" = poweroff ]; then printf '[kernel] exit status=0\n'; exit 0; fi
  if [ "$line" = fault ]; then printf 'ESR decoded\n'; exit 2; fi
  printf 'you said %s\nanneal> ' "$line"
done"#,
        );
        make_executable(&config);
        let mut qemu = Qemu::spawn(&config).expect("spawn");
        let log = qemu.boot().expect("boot");
        assert_eq!(log, "Anneal fake\n");
        assert_eq!(qemu.command("hello").expect("reply"), "you said hello\n");
        let reply = qemu.command_expecting_exit("poweroff", 0).expect("exit 0");
        assert!(reply.contains("[kernel] exit status=0"), "{reply}");

        let mut qemu = Qemu::spawn(&config).expect("spawn");
        qemu.boot().expect("boot");
        let err = qemu
            .command_expecting_exit("fault", 0)
            .expect_err("status 2");
        match err {
            HarnessError::WrongExitStatus {
                expected: 0,
                actual: Some(2),
                transcript,
            } => {
                assert!(transcript.contains("ESR decoded"))
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn waits_fail_with_the_transcript() {
        let config = fake_qemu("printf 'Anneal but no prompt\\n'; sleep 5");
        make_executable(&config);
        let mut qemu = Qemu::spawn(&config).expect("spawn");
        let err = qemu
            .wait_for(PROMPT, Duration::from_millis(300))
            .expect_err("no prompt");
        assert!(matches!(err, HarnessError::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("Anneal but no prompt"));

        let config = fake_qemu("printf 'dying\\n'; exit 3");
        make_executable(&config);
        let mut qemu = Qemu::spawn(&config).expect("spawn");
        let err = qemu.boot().expect_err("exits early");
        assert!(matches!(err, HarnessError::ExitedEarly { .. }), "{err}");
        assert!(err.to_string().contains("dying"));
    }

    #[test]
    fn missing_qemu_is_a_clear_error() {
        let mut config = QemuConfig::virt("/nonexistent/Image");
        config.qemu = PathBuf::from("/nonexistent/qemu-system-aarch64");
        let err = Qemu::spawn(&config).err().expect("cannot spawn");
        assert!(err
            .to_string()
            .contains("cannot start /nonexistent/qemu-system-aarch64"));
    }
}
