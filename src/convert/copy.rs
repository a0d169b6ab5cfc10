//! The disk-copy step of `ferry convert`, kept apart from everything else: it takes the
//! resolved source disks and the output paths, and writes the output images through the
//! conversion engine (`ferry_formats::convert`).
//!
//! Sources are [`DiskSource`]s: a plain file or block device (`File`/`Block`, with the
//! format the description states or None to probe), a member stored uncompressed inside an
//! archive (`InPlace`: archive path, byte offset, length: opened in place, no temp copy), a
//! member of a compressed archive (`Streamed`: readable front to back only), `Chunked` files
//! and `Gzip`-wrapped files. Random-access sources are copied from their [`BlockDevice`]
//! (holes skipped by its map); front-to-back ones as a stream: a streamOptimized VMDK through
//! `vmdk::StreamReader` (grains inflated in parallel by the engine), a raw image as plain
//! chunks.
//!
//! The engine writes `.NAME.part-PID` next to the output and renames it into place only when
//! complete, so a failed copy leaves nothing at the output path.

use anyhow::{bail, Context};
use ferry_formats::convert::{self, ConvertOptions, ConvertStats, OutputFormat, Source};
use ferry_formats::disk::{open_image, probe_format, BlockDevice, Chunk, ChunkData, DiskError, ImageFormat, RawImage, StreamSource};
use ferry_formats::model::{Disk, DiskSource};
use ferry_formats::qcow2::Preallocation;
use ferry_formats::vmdk;
use ferry_inspectors::Slice;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One source disk to copy to one output image.
#[derive(Clone, Debug)]
pub struct CopyJob {
    pub source: DiskSource,
    /// "vmdk", "raw", "qcow2" when the description says; None = probe.
    pub source_format: Option<String>,
    /// Virtual size the description states (needed for a raw image inside a gzip stream).
    pub capacity: Option<u64>,
    /// Final output path (`DIR/NAME-sda`).
    pub output: PathBuf,
    /// `-of`.
    pub format: OutputFormat,
    /// `-oa`: `sparse` is [`Preallocation::Off`], `preallocated` [`Preallocation::Full`].
    pub preallocation: Preallocation,
}

impl CopyJob {
    /// The job copying the described disk `disk` to `output`.
    pub fn new(disk: &Disk, output: PathBuf, format: OutputFormat, preallocation: Preallocation) -> Self {
        CopyJob {
            source: disk.source.clone(),
            source_format: disk.format.clone(),
            capacity: disk.capacity,
            output,
            format,
            preallocation,
        }
    }

    /// The engine's options for this job's `-of` / `-oa`.
    pub fn options(&self) -> ConvertOptions {
        ConvertOptions {
            format: self.format,
            preallocation: self.preallocation,
            ..Default::default()
        }
    }
}

/// Fails for a source (or a part of one) that names no file on this host.
pub fn check_resolved(src: &DiskSource) -> anyhow::Result<()> {
    match src {
        DiskSource::Unresolved { reference } if ferry_formats::model::split_datastore_path(reference).is_some() => {
            bail!("disk {reference:?} is not on this host: map its datastore with --datastore-dir or --datastore NAME=DIR")
        }
        DiskSource::Unresolved { reference } => {
            bail!("disk {reference:?} is network storage, not on this host: name a local copy with --disk-file {reference:?}=FILE")
        }
        DiskSource::Chunked { chunks } => chunks.iter().try_for_each(check_resolved),
        DiskSource::Gzip { inner } => check_resolved(inner),
        _ => Ok(()),
    }
}

/// Copies one source disk to `output` in the job's format and allocation.
pub fn copy_one(job: &CopyJob, output: &Path) -> anyhow::Result<ConvertStats> {
    let what = || format!("could not copy {} to {}", job.source.describe(), output.display());
    if let Some(dev) = open_device(&job.source, job.source_format.as_deref()).with_context(what)? {
        return convert::convert(Source::Device(&*dev), output, &job.options(), &|_, _| {}).with_context(what);
    }
    let stream = open_stream_source(&job.source, job.source_format.as_deref(), job.capacity).with_context(what)?;
    convert::convert(Source::Stream(stream), output, &job.options(), &|_, _| {}).with_context(what)
}

/// Copies an edited device (a source under its conversion overlay) to `output`;
/// `progress(done, total)` is called as bytes of it are written.
pub fn copy_device(
    dev: &dyn BlockDevice,
    job: &CopyJob,
    output: &Path,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> anyhow::Result<ConvertStats> {
    convert::convert(Source::Device(&Edited(dev)), output, &job.options(), progress)
        .with_context(|| format!("could not copy {} to {}", job.source.describe(), output.display()))
}

/// A device known only by its reads and map. Its `info` names no files: an overlay over a raw
/// image reports the raw file as its own, and the engine would copy that file directly
/// (`copy_file_range`), leaving the edits behind.
struct Edited<'a>(&'a dyn BlockDevice);

impl BlockDevice for Edited<'_> {
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), DiskError> {
        self.0.read_at(buf, offset)
    }
    fn map(&self, offset: u64, length: u64) -> Result<Vec<ferry_formats::Extent>, DiskError> {
        self.0.map(offset, length)
    }
    fn info(&self) -> ferry_formats::disk::ImageInfo {
        let mut info = self.0.info();
        info.files.clear();
        info
    }
    fn granularity(&self) -> u64 {
        self.0.granularity()
    }
}

fn parse_format(name: Option<&str>) -> anyhow::Result<Option<ImageFormat>> {
    match name {
        None => Ok(None),
        Some(n) => {
            Ok(Some(ImageFormat::from_name(n).with_context(|| {
                format!("disk format {n:?} is not one of {}", ImageFormat::NAMES)
            })?))
        }
    }
}

/// The format to open a file with. A VMX never states one: its disks are "vmdk" by
/// assumption, so a file a VMX (or any config) calls vmdk whose magic says VHD, VHDX, VDI
/// or qcow2 is read as what it is.
fn file_format(path: &std::path::Path, format: Option<&str>) -> anyhow::Result<Option<ImageFormat>> {
    let declared = parse_format(format)?;
    if declared == Some(ImageFormat::Vmdk) {
        if let Ok(f @ (ImageFormat::Vpc | ImageFormat::Vhdx | ImageFormat::Vdi | ImageFormat::Qcow2)) = probe_format(path) {
            return Ok(Some(f));
        }
    }
    Ok(declared)
}

/// Opens a source for random access: files, block devices and members stored in place.
/// `Ok(None)` for sources only readable front to back (compressed, gzip'd, chunked).
pub fn open_device(src: &DiskSource, format: Option<&str>) -> anyhow::Result<Option<Box<dyn BlockDevice>>> {
    check_resolved(src)?;
    match src {
        DiskSource::File { path } | DiskSource::Block { path } => Ok(Some(open_image(path, file_format(path, format)?)?)),
        DiskSource::InPlace {
            archive,
            member,
            offset,
            length,
        } => {
            let file = ferry_formats::disk::ReadOnlyFile::open(archive)?;
            let name = format!("{}:{member}", archive.display());
            match ferry_formats::disk::probe_range(&file, *offset, *length, &name)? {
                ImageFormat::Vmdk => Ok(Some(vmdk::open_slice(archive, *offset, *length)?)),
                ImageFormat::Raw if format == Some("vmdk") => Ok(Some(vmdk::open_slice(archive, *offset, *length)?)),
                f @ (ImageFormat::Qcow2 | ImageFormat::Vpc | ImageFormat::Vhdx | ImageFormat::Vdi) => {
                    bail!("{name}: a {} image inside an archive cannot be read in place: extract it first", f.name())
                }
                ImageFormat::Raw => {
                    let raw: Arc<dyn BlockDevice> = Arc::new(RawImage::from_file(file));
                    Ok(Some(Box::new(Slice::new(raw, *offset, *length, &name)?)))
                }
            }
        }
        DiskSource::Blank { size } => Ok(Some(Box::new(Blank { size: *size }))),
        DiskSource::SparseInPlace { archive, member, size, segments } => {
            let dev = ferry_formats::ovf::sparse::SparseMember::open(archive, member, *size, segments)?;
            let mut head = [0u8; 4];
            if *size >= 4 {
                dev.read_at(&mut head, 0)?;
            }
            if matches!(&head, b"QFI\xfb" | b"KDMV" | b"COWD" | [0xbe, 0xba, 0xfe, 0xca]) || format.is_some_and(|f| f != "raw") {
                bail!("{}:{member}: a sparse tar member holding a {} image cannot be read in place: extract it first", archive.display(), format.unwrap_or("non-raw"));
            }
            Ok(Some(Box::new(dev)))
        }
        DiskSource::Streamed { .. } | DiskSource::Chunked { .. } | DiskSource::Gzip { .. } => Ok(None),
        DiskSource::Unresolved { .. } => bail!("unresolved disk source"),
    }
}

/// A blank disk (an OVF Disk without a file): all zeros, nothing allocated.
struct Blank {
    size: u64,
}

impl BlockDevice for Blank {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, buf: &mut [u8], _offset: u64) -> Result<(), DiskError> {
        buf.fill(0);
        Ok(())
    }
    fn map(&self, offset: u64, length: u64) -> Result<Vec<ferry_formats::Extent>, DiskError> {
        ferry_formats::disk::check_range(Path::new("blank disk"), offset, length, self.size)?;
        Ok(vec![ferry_formats::Extent { offset, length, kind: ferry_formats::disk::ExtentKind::Unallocated }])
    }
    fn info(&self) -> ferry_formats::disk::ImageInfo {
        ferry_formats::disk::ImageInfo { format: "raw".into(), virtual_size: self.size, ..Default::default() }
    }
}

/// Longest backing/parent chain walked when listing the files a disk reads.
const MAX_CHAIN_FILES: usize = 64;

/// Every file a source disk reads (its own, extents, parents, backing files): the device's
/// files, then each backing image's, opened in turn.
pub fn files_read(src: &DiskSource, format: Option<&str>) -> anyhow::Result<Vec<PathBuf>> {
    let (DiskSource::File { .. } | DiskSource::Block { .. }) = src else { return Ok(Vec::new()) };
    let Some(dev) = open_device(src, format)? else { return Ok(Vec::new()) };
    let mut info = dev.info();
    let mut files = Vec::new();
    for _ in 0..MAX_CHAIN_FILES {
        files.append(&mut info.files);
        let Some(next) = info.backing.take() else { break };
        if !files.contains(&next) {
            files.push(next.clone());
        }
        info = open_image(&next, None)?.info();
    }
    files.dedup();
    Ok(files)
}

/// The files of `files` that resolve (symlinks followed) outside `dir`.
pub fn outside(files: &[PathBuf], dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let root = dir.canonicalize().with_context(|| format!("{}: canonicalize", dir.display()))?;
    let mut out = Vec::new();
    for f in files {
        let real = f.canonicalize().with_context(|| format!("{}: canonicalize", f.display()))?;
        if !real.starts_with(&root) {
            out.push(f.clone());
        }
    }
    Ok(out)
}

/// Bytes a source stores (for a raw stream's size), when known without reading it.
fn stored_len(src: &DiskSource) -> Option<u64> {
    match src {
        DiskSource::File { path } | DiskSource::Block { path } => std::fs::metadata(path).ok().map(|m| m.len()),
        DiskSource::InPlace { length, .. } | DiskSource::Streamed { length, .. } => Some(*length),
        DiskSource::Chunked { chunks } => chunks.iter().map(stored_len).sum(),
        DiskSource::Blank { size } | DiskSource::SparseInPlace { size, .. } => Some(*size),
        DiskSource::Gzip { .. } | DiskSource::Unresolved { .. } => None,
    }
}

/// Opens a front-to-back source: the first bytes decide between a streamOptimized VMDK and a
/// raw image; a qcow2 image cannot be read front to back. A source the description calls
/// `vmdk` must start with a sparse VMDK header (a descriptor naming other files cannot be
/// streamed).
pub fn open_stream_source(
    src: &DiskSource,
    format: Option<&str>,
    capacity: Option<u64>,
) -> anyhow::Result<Box<dyn StreamSource>> {
    let mut reader = ferry_formats::ovf::open_stream(src)?;
    let name = PathBuf::from(src.describe());
    let mut head = Vec::with_capacity(4);
    (&mut reader)
        .take(4)
        .read_to_end(&mut head)
        .map_err(|e| DiskError::io(&name, "read", e))?;
    let rest: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(head.clone()).chain(reader));
    match head.as_slice() {
        b"KDMV" => Ok(Box::new(vmdk::StreamReader::new(rest, name)?)),
        b"QFI\xfb" => bail!(
            "{}: a qcow2 image inside a compressed archive cannot be read front to back: extract it first",
            name.display()
        ),
        b"COWD" | [0xbe, 0xba, 0xfe, 0xca] => bail!(
            "{}: a VMDK delta inside a compressed archive cannot be read front to back",
            name.display()
        ),
        _ if format == Some("vmdk") => bail!(
            "{}: the description says vmdk, but it does not start with a sparse VMDK header (first bytes {head:02x?})",
            name.display()
        ),
        _ if format == Some("qcow2") => bail!(
            "{}: the description says qcow2, but it is not a qcow2 image",
            name.display()
        ),
        _ => {
            let size = stored_len(src).or(capacity).with_context(|| {
                format!(
                    "{}: raw image of unknown size inside a compressed stream (the description states no capacity)",
                    name.display()
                )
            })?;
            Ok(Box::new(RawStream {
                reader: rest,
                path: name,
                size,
                pos: 0,
            }))
        }
    }
}

/// A raw image read front to back, cut into plain chunks.
struct RawStream {
    reader: Box<dyn Read + Send>,
    path: PathBuf,
    size: u64,
    pos: u64,
}

const RAW_CHUNK: u64 = 1 << 20;

impl StreamSource for RawStream {
    fn size(&self) -> u64 {
        self.size
    }
    fn path(&self) -> &Path {
        &self.path
    }
    fn next_chunk(&mut self) -> Result<Option<Chunk>, DiskError> {
        let want = RAW_CHUNK.min(self.size - self.pos);
        if want == 0 {
            let mut extra = [0u8; 1];
            return match self.reader.read(&mut extra) {
                Ok(0) => Ok(None),
                Ok(_) => Err(DiskError::invalid(
                    &self.path,
                    "length",
                    format!("more than {}", self.size),
                    "the stream is longer than the disk",
                )),
                Err(e) => Err(DiskError::io(&self.path, "read", e)),
            };
        }
        let mut buf = Vec::with_capacity(want as usize);
        (&mut self.reader)
            .take(want)
            .read_to_end(&mut buf)
            .map_err(|e| DiskError::io(&self.path, "read", e))?;
        if (buf.len() as u64) < want {
            let got = self.pos + buf.len() as u64;
            return Err(DiskError::invalid(
                &self.path,
                "length",
                got,
                format!("stream ends before the disk's {} bytes", self.size),
            ));
        }
        let chunk = Chunk {
            offset: self.pos,
            length: want,
            data: ChunkData::Plain(buf),
        };
        self.pos += want;
        Ok(Some(chunk))
    }
}
