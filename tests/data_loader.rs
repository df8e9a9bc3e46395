//! `DataLoader`: `torch.utils.data.DataLoader(dataset, batch_size, shuffle=False)` over rows.

use wgpu_mlp::{DataLoader, Error, Matrix};

/// `[n, cols]` with entry (r, c) = r·100 + c, so every value names its row and column.
fn dataset(n: usize, cols: usize) -> Matrix {
    let data = (0..n * cols)
        .map(|i| ((i / cols) * 100 + i % cols) as f32)
        .collect();
    Matrix::new(n, cols, data).unwrap()
}

#[test]
fn yields_ceil_n_over_b_batches_with_a_short_last_one() {
    for (n, b) in [
        (10, 3),
        (10, 5),
        (10, 1),
        (10, 10),
        (10, 11),
        (1, 1),
        (7, 100),
        (1000, 64),
    ] {
        let data = dataset(n, 3);
        let loader = DataLoader::new(&data, b).unwrap();
        let expected = n.div_ceil(b);
        assert_eq!(loader.num_batches(), expected, "n={n} b={b}");
        let sizes: Vec<usize> = loader.map(|m| m.rows()).collect();
        assert_eq!(sizes.len(), expected, "n={n} b={b}");
        let mut want = vec![b; n / b];
        if n % b != 0 {
            want.push(n % b);
        }
        assert_eq!(sizes, want, "n={n} b={b}");
    }
}

#[test]
fn rows_come_in_order_with_exact_contents() {
    let data = dataset(10, 3);
    let batches: Vec<Matrix> = DataLoader::new(&data, 4).unwrap().collect();
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[0].shape(), [4, 3]);
    assert_eq!(batches[2].shape(), [2, 3]);
    assert_eq!(
        batches[0].as_slice(),
        [
            0., 1., 2., 100., 101., 102., 200., 201., 202., 300., 301., 302.
        ]
    );
    assert_eq!(batches[2].as_slice(), [800., 801., 802., 900., 901., 902.]);
    // Concatenated, the batches are the dataset.
    let all: Vec<f32> = batches.iter().flat_map(|m| m.as_slice().to_vec()).collect();
    assert_eq!(all, data.as_slice());
    // Every batch row is the matching dataset row.
    let mut r = 0;
    for batch in &batches {
        for i in 0..batch.rows() {
            assert_eq!(batch.row(i), data.row(r));
            r += 1;
        }
    }
    assert_eq!(r, 10);
}

#[test]
fn exhausted_loader_stays_exhausted() {
    let data = dataset(5, 2);
    let mut loader = DataLoader::new(&data, 2).unwrap();
    assert_eq!(loader.by_ref().count(), 3);
    assert!(loader.next().is_none());
    assert!(loader.next().is_none());
    // A new loader starts over.
    assert_eq!(DataLoader::new(&data, 2).unwrap().count(), 3);
}

#[test]
fn batch_size_zero_is_an_error() {
    let data = dataset(4, 2);
    let err = DataLoader::new(&data, 0).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert!(err.to_string().contains("batch size"), "{err}");
}

#[test]
fn empty_dataset_yields_nothing() {
    let data = Matrix::zeros(0, 4);
    let loader = DataLoader::new(&data, 8).unwrap();
    assert_eq!(loader.num_batches(), 0);
    assert_eq!(loader.count(), 0);
}

#[test]
fn zero_width_rows_still_batch_by_row_count() {
    let data = Matrix::zeros(5, 0);
    let shapes: Vec<[usize; 2]> = DataLoader::new(&data, 2)
        .unwrap()
        .map(|m| m.shape())
        .collect();
    assert_eq!(shapes, [[2, 0], [2, 0], [1, 0]]);
}
