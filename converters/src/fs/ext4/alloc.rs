//! Block and inode bitmaps: allocation, freeing, free counts and bitmap checksums.

use super::bytes::crc32c_raw;
use super::group::{itable_blocks, BG_BLOCK_UNINIT, BG_INODE_UNINIT, BG_ITABLE_ZEROED};
use super::{Ext4, FsError};

fn bit(map: &[u8], i: u64) -> bool {
    map.get((i / 8) as usize).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

fn set_bit(map: &mut [u8], i: u64, on: bool) {
    if let Some(b) = map.get_mut((i / 8) as usize) {
        if on {
            *b |= 1 << (i % 8);
        } else {
            *b &= !(1 << (i % 8));
        }
    }
}

impl Ext4<'_> {
    /// Blocks in group `g` (the last group may be short).
    fn blocks_in_group(&self, g: u32) -> u64 {
        let start = self.group_first_block(g);
        u64::from(self.sb.blocks_per_group).min(self.sb.blocks_count - start)
    }

    fn group_first_block(&self, g: u32) -> u64 {
        self.sb.first_data_block + u64::from(g) * u64::from(self.sb.blocks_per_group)
    }

    fn bitmap_csum(&self, map: &[u8], inode: bool) -> u32 {
        let bits = if inode { self.sb.inodes_per_group } else { self.sb.blocks_per_group };
        crc32c_raw(self.sb.csum_seed, map.get(..(bits / 8) as usize).unwrap_or(&[]))
    }

    /// The block bitmap of group `g`, built in memory for a never-initialised group.
    fn load_block_bitmap(&self, g: u32) -> Result<Vec<u8>, FsError> {
        if self.gdt.flags(g) & BG_BLOCK_UNINIT != 0 && (self.sb.has_csum() || self.sb.has_gdt_csum()) {
            return Ok(self.uninit_block_bitmap(g));
        }
        let map = self.read_block(self.gdt.block_bitmap(g))?;
        if self.sb.has_csum() {
            let mask = self.gdt.bitmap_csum_mask(false);
            if self.bitmap_csum(&map, false) & mask != self.gdt.block_bitmap_csum(g) {
                return Err(self.invalid(
                    &format!("group {g} block bitmap checksum"),
                    self.gdt.block_bitmap_csum(g),
                    "does not match",
                ));
            }
        }
        Ok(map)
    }

    /// What the kernel computes for a BLOCK_UNINIT group: its superblock backup and group
    /// descriptor copies, and every group's bitmaps and inode table that lie inside it.
    fn uninit_block_bitmap(&self, g: u32) -> Vec<u8> {
        let mut map = vec![0u8; self.sb.block_size as usize];
        let start = self.group_first_block(g);
        let n = self.blocks_in_group(g);
        if self.sb.group_has_super(g) {
            let meta = 1 + self.sb.gdt_blocks() + u64::from(self.sb.reserved_gdt_blocks);
            for i in 0..meta.min(n) {
                set_bit(&mut map, i, true);
            }
        }
        let it = itable_blocks(&self.sb);
        let mut mark = |b: u64| {
            if b >= start && b < start + n {
                set_bit(&mut map, b - start, true);
            }
        };
        for h in 0..self.sb.groups {
            mark(self.gdt.block_bitmap(h));
            mark(self.gdt.inode_bitmap(h));
            let t = self.gdt.inode_table(h);
            if t + it > start && t < start + n {
                for b in t.max(start)..(t + it).min(start + n) {
                    mark(b);
                }
            }
        }
        for i in n..self.sb.block_size * 8 {
            set_bit(&mut map, i, true);
        }
        map
    }

    fn store_block_bitmap(&mut self, g: u32, map: &[u8]) -> Result<(), FsError> {
        self.write_block(self.gdt.block_bitmap(g), map)?;
        if self.sb.has_csum() {
            let c = self.bitmap_csum(map, false);
            self.gdt.set_bitmap_csum(g, false, c);
        }
        let flags = self.gdt.flags(g) & !BG_BLOCK_UNINIT;
        self.gdt.set_flags(g, flags);
        self.gdt.write(&self.vol, &self.sb, g, &self.name)
    }

    fn load_inode_bitmap(&self, g: u32) -> Result<Vec<u8>, FsError> {
        if self.gdt.flags(g) & BG_INODE_UNINIT != 0 && (self.sb.has_csum() || self.sb.has_gdt_csum()) {
            let mut map = vec![0u8; self.sb.block_size as usize];
            for i in u64::from(self.sb.inodes_per_group)..self.sb.block_size * 8 {
                set_bit(&mut map, i, true);
            }
            return Ok(map);
        }
        let map = self.read_block(self.gdt.inode_bitmap(g))?;
        if self.sb.has_csum() {
            let mask = self.gdt.bitmap_csum_mask(true);
            if self.bitmap_csum(&map, true) & mask != self.gdt.inode_bitmap_csum(g) {
                return Err(self.invalid(
                    &format!("group {g} inode bitmap checksum"),
                    self.gdt.inode_bitmap_csum(g),
                    "does not match",
                ));
            }
        }
        Ok(map)
    }

    fn store_inode_bitmap(&mut self, g: u32, map: &[u8]) -> Result<(), FsError> {
        self.write_block(self.gdt.inode_bitmap(g), map)?;
        if self.sb.has_csum() {
            let c = self.bitmap_csum(map, true);
            self.gdt.set_bitmap_csum(g, true, c);
        }
        let flags = self.gdt.flags(g) & !BG_INODE_UNINIT;
        self.gdt.set_flags(g, flags);
        self.gdt.write(&self.vol, &self.sb, g, &self.name)
    }

    /// Allocates `count` blocks, as few runs as first-fit finds, starting near `goal`.
    /// Returns (first block, length) runs.
    pub(super) fn alloc_blocks(&mut self, count: u64, goal: u64) -> Result<Vec<(u64, u64)>, FsError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        if self.sb.free_blocks() < count {
            return Err(FsError::NoSpace { fs: self.name.clone(), what: format!("{count} blocks") });
        }
        let groups = self.sb.groups;
        let goal_group = (goal.saturating_sub(self.sb.first_data_block) / u64::from(self.sb.blocks_per_group)) as u32;
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut left = count;
        for k in 0..groups {
            let g = (goal_group.min(groups - 1) + k) % groups;
            if self.gdt.free_blocks(g) == 0 {
                continue;
            }
            let mut map = self.load_block_bitmap(g)?;
            let start = self.group_first_block(g);
            let n = self.blocks_in_group(g);
            let mut taken = 0u64;
            let mut i = 0u64;
            while i < n && left > 0 {
                if bit(&map, i) {
                    i += 1;
                    continue;
                }
                set_bit(&mut map, i, true);
                taken += 1;
                left -= 1;
                match runs.last_mut() {
                    Some((s, l)) if *s + *l == start + i => *l += 1,
                    _ => runs.push((start + i, 1)),
                }
                i += 1;
            }
            if taken == 0 {
                continue;
            }
            let free = self.gdt.free_blocks(g).checked_sub(taken).ok_or_else(|| {
                self.invalid(
                    &format!("group {g} free blocks count"),
                    self.gdt.free_blocks(g),
                    "smaller than its bitmap's free bits",
                )
            })?;
            self.gdt.set_free_blocks(g, free);
            self.store_block_bitmap(g, &map)?;
            if left == 0 {
                break;
            }
        }
        if left > 0 {
            return Err(FsError::NoSpace { fs: self.name.clone(), what: format!("{count} blocks") });
        }
        let free = self.sb.free_blocks() - count;
        self.sb.set_free_blocks(free);
        self.write_super()?;
        Ok(runs)
    }

    /// Frees `len` blocks from `start`; a block already free is an error (corruption).
    pub(super) fn free_blocks(&mut self, start: u64, len: u64) -> Result<(), FsError> {
        self.check_block(start, len)?;
        let mut pos = start;
        let end = start + len;
        while pos < end {
            let g = ((pos - self.sb.first_data_block) / u64::from(self.sb.blocks_per_group)) as u32;
            let gstart = self.group_first_block(g);
            let gend = (gstart + self.blocks_in_group(g)).min(end);
            let mut map = self.load_block_bitmap(g)?;
            for b in pos..gend {
                if !bit(&map, b - gstart) {
                    return Err(self.invalid("block bitmap", b, "block to free is already free"));
                }
                set_bit(&mut map, b - gstart, false);
            }
            let n = gend - pos;
            let free = self.gdt.free_blocks(g) + n;
            self.gdt.set_free_blocks(g, free);
            self.store_block_bitmap(g, &map)?;
            let total = self.sb.free_blocks() + n;
            self.sb.set_free_blocks(total);
            pos = gend;
        }
        self.write_super()
    }

    /// Allocates an inode, preferring group `goal`; the caller initialises and writes it.
    pub(super) fn alloc_inode(&mut self, goal: u32, is_dir: bool) -> Result<u32, FsError> {
        let groups = self.sb.groups;
        let ipg = self.sb.inodes_per_group;
        for k in 0..groups {
            let g = (goal.min(groups - 1) + k) % groups;
            if self.gdt.free_inodes(g) == 0 {
                continue;
            }
            let mut map = self.load_inode_bitmap(g)?;
            let Some(index) = (0..ipg).find(|&i| !bit(&map, u64::from(i)) && g * ipg + i + 1 >= self.sb.first_ino)
            else {
                continue;
            };
            // Like the kernel: a group whose inodes come into use gets a real block bitmap.
            if self.gdt.flags(g) & BG_BLOCK_UNINIT != 0 {
                let bmap = self.load_block_bitmap(g)?;
                self.store_block_bitmap(g, &bmap)?;
            }
            let csum_groups = self.sb.has_csum() || self.sb.has_gdt_csum();
            let used_end = ipg.saturating_sub(self.gdt.itable_unused(g));
            if csum_groups && index >= used_end {
                if self.gdt.flags(g) & BG_ITABLE_ZEROED == 0 || self.gdt.flags(g) & BG_INODE_UNINIT != 0 {
                    // Inode table space coming into the checked range must read as unused.
                    let isz = u64::from(self.sb.inode_size);
                    let off = self.gdt.inode_table(g) * self.sb.block_size + u64::from(used_end) * isz;
                    let zeros = vec![0u8; ((u64::from(index - used_end) + 1) * isz) as usize];
                    self.vol.write(&zeros, off, &self.name)?;
                }
                self.gdt.set_itable_unused(g, ipg - index - 1);
            }
            set_bit(&mut map, u64::from(index), true);
            let free = self.gdt.free_inodes(g) - 1;
            self.gdt.set_free_inodes(g, free);
            if is_dir {
                let d = self.gdt.used_dirs(g) + 1;
                self.gdt.set_used_dirs(g, d);
            }
            self.store_inode_bitmap(g, &map)?;
            let total = self
                .sb
                .free_inodes()
                .checked_sub(1)
                .ok_or_else(|| self.invalid("s_free_inodes_count", 0, "smaller than the groups' free inodes"))?;
            self.sb.set_free_inodes(total);
            self.write_super()?;
            return Ok(g * ipg + index + 1);
        }
        Err(FsError::NoSpace { fs: self.name.clone(), what: "an inode".into() })
    }

    /// Marks inode `ino` free in its group.
    pub(super) fn free_inode(&mut self, ino: u32, is_dir: bool) -> Result<(), FsError> {
        let ipg = self.sb.inodes_per_group;
        if ino < self.sb.first_ino || ino > self.sb.inodes_count {
            return Err(self.invalid("inode number to free", ino, "reserved or out of range"));
        }
        let g = (ino - 1) / ipg;
        let index = u64::from((ino - 1) % ipg);
        let mut map = self.load_inode_bitmap(g)?;
        if !bit(&map, index) {
            return Err(self.invalid("inode bitmap", ino, "inode to free is already free"));
        }
        set_bit(&mut map, index, false);
        let free = self.gdt.free_inodes(g) + 1;
        self.gdt.set_free_inodes(g, free);
        if is_dir {
            let d = self.gdt.used_dirs(g).saturating_sub(1);
            self.gdt.set_used_dirs(g, d);
        }
        self.store_inode_bitmap(g, &map)?;
        let total = self.sb.free_inodes() + 1;
        self.sb.set_free_inodes(total);
        self.write_super()
    }
}
