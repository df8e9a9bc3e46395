//! Awaiting the GPU: `forward_async` from any executor, several calls in flight at once, no
//! thread blocked on the device (on native backends the context polls it in the background).
//!
//! `cargo run --example async`
use wgpu_mlp::gpu::{GpuContext, GpuMlp, GpuOptions};
use wgpu_mlp::{Activation, Matrix, Mlp};

fn main() -> Result<(), wgpu_mlp::Error> {
    // Any executor works; pollster is the smallest.
    pollster::block_on(run())
}

async fn run() -> Result<(), wgpu_mlp::Error> {
    let model = Mlp::builder(784)
        .layer(512, Activation::Relu)
        .layer(10, Activation::Softmax)
        .seed(0)
        .build()?;
    let ctx = GpuContext::new_async(&GpuOptions::default()).await?;
    let gpu = GpuMlp::new(&ctx, &model)?;

    // Three requests of different sizes, awaited together: each gets a workspace of its own.
    let inputs: Vec<Matrix> = [1, 32, 256]
        .iter()
        .map(|&b| {
            Matrix::new(
                b,
                784,
                (0..b * 784).map(|i| (i % 255) as f32 / 255.0).collect(),
            )
        })
        .collect::<Result<_, _>>()?;
    let (a, b, c) = join3(
        gpu.forward_async(&inputs[0]),
        gpu.forward_async(&inputs[1]),
        gpu.forward_async(&inputs[2]),
    )
    .await;
    for (x, y) in inputs.iter().zip([a?, b?, c?]) {
        let best = y.row(0).iter().cloned().fold(f32::MIN, f32::max);
        println!(
            "batch {:>3}: first row's top probability {best:.4}",
            x.rows()
        );
    }
    Ok(())
}

/// Awaits three futures concurrently (what `tokio::join!` or `futures::join!` do).
async fn join3<A: Future, B: Future, C: Future>(
    a: A,
    b: B,
    c: C,
) -> (A::Output, B::Output, C::Output) {
    use std::pin::pin;
    use std::task::Poll;
    let (mut a, mut b, mut c) = (pin!(a), pin!(b), pin!(c));
    let (mut ra, mut rb, mut rc) = (None, None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none()
            && let Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        if rc.is_none()
            && let Poll::Ready(v) = c.as_mut().poll(cx)
        {
            rc = Some(v);
        }
        if ra.is_some() && rb.is_some() && rc.is_some() {
            Poll::Ready((ra.take().unwrap(), rb.take().unwrap(), rc.take().unwrap()))
        } else {
            Poll::Pending
        }
    })
    .await
}
