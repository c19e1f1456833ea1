//! An anonymous memory region, and the kernel calls the workloads need.

use std::io;

pub const PAGE: usize = 4096;

pub struct Region {
    ptr: *mut u64,
    len: usize,
}

// SAFETY: the region is plain memory; threads share it only through
// `touch` (a volatile read) while nobody holds `words_mut`.
unsafe impl Sync for Region {}

impl Region {
    pub fn new(bytes: usize) -> io::Result<Self> {
        let len = bytes.div_ceil(PAGE) * PAGE;
        // SAFETY: a fresh private anonymous mapping; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { ptr: p.cast(), len })
    }

    pub fn words(&self) -> &[u64] {
        // SAFETY: the mapping is len bytes, readable, and owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len / 8) }
    }

    pub fn words_mut(&mut self) -> &mut [u64] {
        // SAFETY: as above, and &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len / 8) }
    }

    pub fn pages(&self) -> usize {
        self.len / PAGE
    }

    /// Asks the kernel to reclaim (swap out) the whole region now.
    pub fn page_out(&self) -> io::Result<()> {
        // SAFETY: advice on our own mapping.
        let r = unsafe { libc::madvise(self.ptr.cast(), self.len, libc::MADV_PAGEOUT) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads one word of page `page` (forces the page in).
    pub fn touch(&self, page: usize) -> u64 {
        // SAFETY: page < pages(), so the word is inside the mapping.
        unsafe { std::ptr::read_volatile(self.ptr.add(page * PAGE / 8)) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping created in new().
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Major faults of this process so far.
pub fn major_faults() -> u64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    u.ru_majflt as u64
}
