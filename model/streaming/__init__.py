"""Streaming attention: one decoder step per frame against a rolling K/V window, exact to
training.

The windowed model re-reads prompt + L + S frames + [CLS] for every frame. The streaming
model reads each frame once. Per frame t there are two tokens:

    f_t   the frame token: sees the question prompt and the frame tokens f_{t-W+1} … f_t
    c_t   a side [CLS]: sees the prompt, the same W frames and itself; nothing sees it

so a frame's keys and values never change once computed, and serving keeps, per layer, a
ring of the last W frames' K/V (+ the prompt's K/V, the same for every stream).

Positions (RoPE) are fixed slots, not time: the prompt sits at 0 … P-1, the frame j steps
old at P+W-1-j (the newest at P+W-1), [CLS] at P+W. Keys are kept *before* rotation and
rotated at their slot whenever they are read, from one cos/sin table of P+W+1 rows, so the
prompt is at the same offset from every query, a frame's angle never depends on how long
the stream has run, and nothing accumulates (re-rotating cached keys step by step would).
Training computes the same scores for all frames of a long sequence at once (a banded
attention: W shifted key bands), so every frame is supervised and serving is the same
arithmetic in another order.

The decoder layers stay transformers' own (norms, projections with their LoRA adapters,
MLP); only the attention is ours, registered as `gad_streaming` in transformers' attention
interface and selected for the duration of a streaming pass. Position ids are all zero,
so transformers' own rotation is the identity and q/k reach the attention unrotated.

    kernel     the attention: PassMode, StreamPass, RoPE at slots, the banded pass, the
               step; its registration and selection in the decoder
    runner     StreamingGAD (prompt state, training pass, prefill, step) and BatchKVRings,
               the K/V rings of a batch of streams
    objective  StreamingObjective: CE on every frame's [CLS], + the LM loss of each
               frame's label text for GAD
"""
