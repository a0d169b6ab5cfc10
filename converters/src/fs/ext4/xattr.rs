//! The shared extended-attribute block: dropping one reference when an inode goes away.

use super::bytes::{crc32c_raw, le32, set32};
use super::inode::Inode;
use super::{Ext4, FsError};

const XATTR_MAGIC: u32 = 0xEA02_0000;

impl Ext4<'_> {
    fn xattr_csum(&self, block: &[u8], nr: u64) -> u32 {
        let mut b = block.to_vec();
        set32(&mut b, 0x10, 0);
        crc32c_raw(crc32c_raw(self.sb.csum_seed, &nr.to_le_bytes()), &b)
    }

    /// Releases the inode's extended-attribute block: one reference fewer, freed at zero.
    pub(super) fn release_xattr_block(&mut self, inode: &mut Inode) -> Result<(), FsError> {
        let nr = inode.file_acl();
        if nr == 0 {
            return Ok(());
        }
        let mut block = self.read_block(nr)?;
        let field = format!("inode {} xattr block {nr}", inode.ino);
        if le32(&block, 0) != XATTR_MAGIC || le32(&block, 8) != 1 {
            return Err(self.invalid(&field, format!("{:#x}", le32(&block, 0)), "bad header"));
        }
        if self.sb.has_csum() && self.xattr_csum(&block, nr) != le32(&block, 0x10) {
            return Err(self.invalid(&field, "checksum", "does not match"));
        }
        let refs = le32(&block, 4);
        if refs > 1 {
            set32(&mut block, 4, refs - 1);
            if self.sb.has_csum() {
                let c = self.xattr_csum(&block, nr);
                set32(&mut block, 0x10, c);
            }
            self.write_block(nr, &block)?;
        } else {
            self.free_blocks(nr, 1)?;
        }
        inode.set_file_acl(0);
        Ok(())
    }
}
