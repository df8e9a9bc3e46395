// linear.wgsl's weight texture for WeightFormat::F16: loads convert to f32, so the kernel is the
// same as with linear_weights_f32.wgsl.
@group(0) @binding(2) var wt: texture_storage_2d<rgba16float, read>;
