//! The raw boot image: the kernel ELF's PT_LOAD segments copied into one flat file that
//! starts at the lowest segment's physical address, gaps zero-filled (what
//! `objcopy -O binary` does).
//!
//! Why raw: only a raw arm64 Image makes QEMU pass the device tree in x0, load `-initrd`
//! and patch `/chosen` on both boards, and it is what the Raspberry Pi firmware loads as
//! `kernel8.img`. The first bytes must be the arm64 Image header; xtask checks its magic
//! so that a linker-script mistake (e.g. `.eh_frame` placed before `_start`) fails here
//! with a clear message instead of as a silent hang in QEMU.

use std::path::Path;

use object::elf::{FileHeader64, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};
use object::Endianness;

use crate::error::{io, Error, Result};
use crate::limits;

/// One loadable segment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    address: u64,
    file_bytes: Vec<u8>,
    memory_size: u64,
}

/// Makes the flat image from ELF bytes. `path` is only for messages.
pub fn raw_image_from_elf(elf: &[u8], path: &Path) -> Result<Vec<u8>> {
    let fail = |problem: String| Error::Image {
        path: path.to_path_buf(),
        problem,
    };
    let header = FileHeader64::<Endianness>::parse(elf)
        .map_err(|e| fail(format!("not a 64-bit ELF file: {e}")))?;
    let endian = header
        .endian()
        .map_err(|e| fail(format!("bad ELF byte order: {e}")))?;
    if header.e_machine.get(endian) != object::elf::EM_AARCH64 {
        return Err(fail(format!(
            "ELF machine is {}, not AArch64 (183)",
            header.e_machine.get(endian)
        )));
    }
    let program_headers = header
        .program_headers(endian, elf)
        .map_err(|e| fail(format!("bad program headers: {e}")))?;
    let mut segments = Vec::new();
    for ph in program_headers {
        if ph.p_type(endian) != PT_LOAD || ph.p_memsz(endian) == 0 {
            continue;
        }
        let data = ph
            .data(endian, elf)
            .map_err(|()| fail("a PT_LOAD segment lies outside the file".to_string()))?;
        segments.push(Segment {
            address: ph.p_paddr(endian),
            file_bytes: data.to_vec(),
            memory_size: ph.p_memsz(endian),
        });
    }
    flatten(&segments).map_err(fail)
}

fn flatten(segments: &[Segment]) -> std::result::Result<Vec<u8>, String> {
    let base = segments
        .iter()
        .map(|s| s.address)
        .min()
        .ok_or("the ELF has no PT_LOAD segment")?;
    // Only bytes present in the file go into the image: the zero-initialised tail of a
    // segment (.bss) is cleared by the kernel itself and would only make the file larger.
    let end = segments
        .iter()
        .filter(|s| !s.file_bytes.is_empty())
        .map(|s| s.address.saturating_add(s.file_bytes.len() as u64))
        .max()
        .ok_or("no PT_LOAD segment has bytes in the file")?;
    let size = end - base;
    if size > limits::MAX_IMAGE_BYTES {
        return Err(format!(
            "loaded segments span {size} bytes from {base:#x} (limit {}): a segment is linked far away",
            limits::MAX_IMAGE_BYTES
        ));
    }
    let mut image = vec![0u8; size as usize];
    let mut placed: Vec<(u64, u64)> = Vec::new();
    for segment in segments.iter().filter(|s| !s.file_bytes.is_empty()) {
        let start = segment.address - base;
        let stop = start + segment.file_bytes.len() as u64;
        if let Some((a, b)) = placed.iter().find(|(a, b)| start < *b && *a < stop) {
            return Err(format!(
                "segments overlap: [{:#x}, {:#x}) and [{:#x}, {:#x})",
                base + a,
                base + b,
                base + start,
                base + stop
            ));
        }
        placed.push((start, stop));
        debug_assert!(segment.memory_size >= segment.file_bytes.len() as u64);
        image[start as usize..stop as usize].copy_from_slice(&segment.file_bytes);
    }
    let magic_end = limits::ARM64_IMAGE_MAGIC_OFFSET + limits::ARM64_IMAGE_MAGIC.len();
    if image.get(limits::ARM64_IMAGE_MAGIC_OFFSET..magic_end)
        != Some(&limits::ARM64_IMAGE_MAGIC[..])
    {
        return Err(format!(
            "no arm64 Image header at the lowest address {base:#x} (\"ARM\\x64\" expected at byte {}): \
             check that the header is the first thing the linker script places",
            limits::ARM64_IMAGE_MAGIC_OFFSET
        ));
    }
    Ok(image)
}

/// Reads the ELF at `elf_path` and writes the raw image to `out`; returns its size.
pub fn write_raw_image(elf_path: &Path, out: &Path) -> Result<u64> {
    let elf = std::fs::read(elf_path).map_err(io("read the kernel ELF", elf_path))?;
    let image = raw_image_from_elf(&elf, elf_path)?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    // QEMU instances (parallel tests, `./qemu.sh` inside a test) may be reading the
    // current image: leave an identical file alone, and replace a changed one by an
    // atomic rename so that no reader ever sees a half-written image.
    if std::fs::read(out).is_ok_and(|old| old == image) {
        return Ok(image.len() as u64);
    }
    let temp = out.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&temp, &image).map_err(io("write the boot image", &temp))?;
    std::fs::rename(&temp, out).map_err(io("rename the boot image to", out))?;
    Ok(image.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal little-endian ELF64 for AArch64 with the given (paddr, bytes, memsz)
    /// PT_LOAD segments.
    fn elf(segments: &[(u64, &[u8], u64)], machine: u16) -> Vec<u8> {
        let phoff = 64u64;
        let data_start = phoff + 56 * segments.len() as u64;
        let mut out = Vec::new();
        out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        out.extend_from_slice(&machine.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&segments.first().map_or(0, |s| s.0).to_le_bytes()); // entry
        out.extend_from_slice(&phoff.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // shoff
        out.extend_from_slice(&0u32.to_le_bytes()); // flags
        out.extend_from_slice(&64u16.to_le_bytes()); // ehsize
        out.extend_from_slice(&56u16.to_le_bytes()); // phentsize
        out.extend_from_slice(&(segments.len() as u16).to_le_bytes());
        out.extend_from_slice(&64u16.to_le_bytes()); // shentsize
        out.extend_from_slice(&0u16.to_le_bytes()); // shnum
        out.extend_from_slice(&0u16.to_le_bytes()); // shstrndx
        let mut offset = data_start;
        for (addr, bytes, memsz) in segments {
            out.extend_from_slice(&PT_LOAD.to_le_bytes());
            out.extend_from_slice(&5u32.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&addr.to_le_bytes()); // vaddr
            out.extend_from_slice(&addr.to_le_bytes()); // paddr
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(&memsz.to_le_bytes());
            out.extend_from_slice(&4096u64.to_le_bytes());
            offset += bytes.len() as u64;
        }
        for (_, bytes, _) in segments {
            out.extend_from_slice(bytes);
        }
        out
    }

    fn header_block() -> Vec<u8> {
        let mut head = vec![0xAAu8; 64];
        head[56..60].copy_from_slice(b"ARM\x64");
        head
    }

    #[test]
    fn flattens_segments_with_zero_filled_gaps() {
        let head = header_block();
        let data = [1u8, 2, 3, 4];
        let file = elf(
            &[(0x4020_0000, &head, 64), (0x4020_0100, &data, 0x1000)],
            object::elf::EM_AARCH64,
        );
        let image = raw_image_from_elf(&file, Path::new("k.elf")).expect("image");
        assert_eq!(image.len(), 0x104);
        assert_eq!(&image[..64], &head[..]);
        assert!(image[64..0x100].iter().all(|&b| b == 0));
        assert_eq!(&image[0x100..], &data);
    }

    #[test]
    fn segment_order_in_the_file_does_not_matter() {
        let head = header_block();
        let file = elf(
            &[(0x8_1000, &[9, 9], 2), (0x8_0000, &head, 64)],
            object::elf::EM_AARCH64,
        );
        let image = raw_image_from_elf(&file, Path::new("k.elf")).expect("image");
        assert_eq!(image.len(), 0x1002);
        assert_eq!(&image[56..60], b"ARM\x64");
        assert_eq!(&image[0x1000..], &[9, 9]);
    }

    #[test]
    fn rejects_what_cannot_boot() {
        let head = header_block();
        let no_magic = elf(&[(0x4020_0000, &[0u8; 64], 64)], object::elf::EM_AARCH64);
        let err = raw_image_from_elf(&no_magic, Path::new("k.elf")).unwrap_err();
        assert!(err.to_string().contains("no arm64 Image header"), "{err}");

        let wrong_machine = elf(&[(0x4020_0000, &head, 64)], 62);
        let err = raw_image_from_elf(&wrong_machine, Path::new("k.elf")).unwrap_err();
        assert!(err.to_string().contains("not AArch64"), "{err}");

        let far_apart = elf(
            &[(0x4000_0000, &head, 64), (0x9000_0000, &[1], 1)],
            object::elf::EM_AARCH64,
        );
        let err = raw_image_from_elf(&far_apart, Path::new("k.elf")).unwrap_err();
        assert!(err.to_string().contains("linked far away"), "{err}");

        let overlapping = elf(
            &[(0x4000_0000, &head, 64), (0x4000_0010, &[1, 2], 2)],
            object::elf::EM_AARCH64,
        );
        let err = raw_image_from_elf(&overlapping, Path::new("k.elf")).unwrap_err();
        assert!(err.to_string().contains("overlap"), "{err}");

        let err = raw_image_from_elf(b"not an elf at all", Path::new("k.elf")).unwrap_err();
        assert!(err.to_string().contains("k.elf"), "{err}");

        let mut truncated = elf(&[(0x4020_0000, &head, 64)], object::elf::EM_AARCH64);
        truncated.truncate(100);
        assert!(raw_image_from_elf(&truncated, Path::new("k.elf")).is_err());
    }
}
