//! Device drivers. Each maps its registers with tock-registers from the device's manual.

#![allow(unsafe_code)]

pub mod pl011;
