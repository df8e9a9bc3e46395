//! Weights and data I/O: safetensors state_dicts, `.npy` and CSV matrices. (Stub.)
