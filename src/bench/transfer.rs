//! The transfer floor: `up` bytes written to the device and `down` bytes read back with wgpu's
//! own calls (`write_buffer`, a copy to a mapped buffer, a copy out of the mapping), no kernel.
//! What any end-to-end call moving those bytes costs at least, so the harness can say how far an
//! end-to-end path is from it.

use crate::bench::options::BenchOptions;
use crate::bench::stats::Stats;
use crate::bench::timing::time_runs;
use crate::error::{Error, Result};
use crate::gpu::GpuContext;

/// Buffers for one transfer size, made once and reused across runs.
pub(crate) struct Transfer {
    host_up: Vec<u8>,
    host_down: Vec<u8>,
    device: wgpu::Buffer,
    readback: wgpu::Buffer,
    down: u64,
}

impl Transfer {
    /// Buffers to move `up` bytes to the device and `down` bytes back (each at least 4, a
    /// multiple of 4).
    pub(crate) fn new(ctx: &GpuContext, up: u64, down: u64) -> Result<Self> {
        let round = |n: u64| n.max(4).next_multiple_of(4);
        let (up, down) = (round(up), round(down));
        let limit = ctx.limits().max_buffer_size;
        if up.max(down) > limit {
            return Err(Error::OutOfMemory(format!(
                "a transfer of {} bytes is over the device's largest buffer ({limit} bytes)",
                up.max(down)
            )));
        }
        let device = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("transfer"),
            size: up.max(down),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("transfer readback"),
            size: down,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        // Not zeros: a driver could skip them.
        let host_up = (0..up).map(|i| (i * 7 + 1) as u8).collect();
        Ok(Transfer {
            host_up,
            host_down: vec![0; down as usize],
            device,
            readback,
            down,
        })
    }

    /// One round trip, waiting for the readback.
    pub(crate) fn run(&mut self, ctx: &GpuContext) -> Result<()> {
        let (device, queue) = (ctx.device(), ctx.queue());
        queue.write_buffer(&self.device, 0, &self.host_up);
        let mut enc = device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&self.device, 0, &self.readback, 0, self.down);
        queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        self.readback
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(e.to_string()))?;
        rx.recv()
            .map_err(|e| Error::Gpu(e.to_string()))?
            .map_err(|e| Error::Gpu(e.to_string()))?;
        let view = self
            .readback
            .slice(..)
            .get_mapped_range()
            .map_err(|e| Error::Gpu(e.to_string()))?;
        self.host_down.copy_from_slice(&view);
        drop(view);
        self.readback.unmap();
        Ok(())
    }
}

/// Times round trips of `up` and `down` bytes.
pub(crate) fn measure(ctx: &GpuContext, opts: &BenchOptions, up: u64, down: u64) -> Result<Stats> {
    let mut t = Transfer::new(ctx, up, down)?;
    let samples = time_runs(opts, || t.run(ctx))?;
    Stats::from_durations(&samples).ok_or_else(|| Error::invalid("no transfer timing"))
}
