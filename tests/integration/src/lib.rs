//! QEMU integration test harness.
