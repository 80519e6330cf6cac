namespace SparseAttn.TorchSharp;

/// <summary>
/// How the four dimensions of a Q, K, V or output tensor are ordered. <see cref="TorchAttention"/> reads torch's
/// <see cref="BHSD"/> unless a call passes another layout; it never infers the layout from the shapes.
/// </summary>
public enum TensorLayout
{
    /// <summary>[B, S, H, D]: batch, sequence, heads, head dim (SparseAttn, FlashAttention and NATTEN).</summary>
    BSHD = 0,

    /// <summary>
    /// [B, H, S, D]: batch, heads, sequence, head dim (torch's scaled_dot_product_attention), the default of
    /// every <see cref="TorchAttention"/> call. Read through strides, never copied.
    /// </summary>
    BHSD = 1,
}
