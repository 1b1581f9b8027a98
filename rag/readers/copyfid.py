"""The project's own FiD reader architecture: a BERT encoder-decoder with a copy head.

Warm-started from a sentence-transformers BERT (the packaged all-MiniLM-L6-v2): the encoder
is that model (lower layers frozen), the decoder a few new BERT layers with cross-attention
(self-attention and feed-forward initialised from the encoder's top layers), and a
pointer-generator copy head (See et al., 2017) that mixes the vocabulary distribution with
a copy distribution over the passages' tokens: small decoders trained on little data learn
to copy long before they learn to generate.

A reader directory stores only the trained parameters; the frozen ones are loaded from the
base model named in its ``rag_reader.json``, so the shipped reader stays small.

Example: ``model = build_minilm_fid(decoder_layers=3, frozen_layers=4)``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import (AutoConfig, AutoModelForSeq2SeqLM, BertConfig, BertLMHeadModel,
                          BertModel, EncoderDecoderConfig, EncoderDecoderModel)
from transformers.modeling_outputs import Seq2SeqLMOutput

from knowledge.errors import UsageError


class CopyFiDConfig(EncoderDecoderConfig):
    model_type = "rag-fid-copy"

    def __init__(self, copy_head: bool = True, span_head: bool = False,
                 lora: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.copy_head = copy_head
        self.span_head = span_head  # start/end logits on the encoder states (spans.py)
        self.lora = lora  # LoRA adapters in every encoder layer (peft LoraConfig arguments)


class CopyFiDModel(EncoderDecoderModel):
    """EncoderDecoderModel whose output distribution can copy tokens from the passages.

    ``source_ids`` (the encoder input ids, flattened like the encoder states) tells the
    copy distribution which vocabulary entry each encoder position stands for.
    """

    config_class = CopyFiDConfig

    def __init__(self, config=None, encoder=None, decoder=None):
        super().__init__(config, encoder, decoder)
        h = self.config.decoder.hidden_size
        self.copy_query = nn.Linear(h, h)
        self.copy_key = nn.Linear(self.config.encoder.hidden_size, h)
        self.copy_gate = nn.Linear(2 * h, 1)
        layers = [self.copy_query, self.copy_key, self.copy_gate]
        if getattr(self.config, "span_head", False):
            self.span = nn.Linear(self.config.encoder.hidden_size, 2)
            layers.append(self.span)
        for layer in layers:
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)

    def span_logits(self, encoder_states: torch.Tensor):
        """(start, end) logits, each shaped like the states without their last dimension."""
        logits = self.span(encoder_states)
        return logits[..., 0], logits[..., 1]

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None,
                encoder_outputs=None, labels=None, source_ids=None, **kwargs):
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                           return_dict=True)
            source_ids = input_ids
        if labels is not None and decoder_input_ids is None:
            decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        want_hidden = kwargs.pop("output_hidden_states", False)
        out = super().forward(attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
                              encoder_outputs=encoder_outputs, output_hidden_states=True,
                              **kwargs)
        logits, attn = out.logits, None
        if self.config.copy_head and source_ids is not None:
            enc = encoder_outputs[0]
            dec = out.decoder_hidden_states[-1]
            scores = self.copy_query(dec) @ self.copy_key(enc).transpose(1, 2)
            scores = scores / dec.shape[-1] ** 0.5
            if attention_mask is not None:
                scores = scores.masked_fill(attention_mask[:, None, :] == 0, float("-inf"))
            attn = scores.float().softmax(-1)  # (B, T, S)
            context = attn.to(enc.dtype) @ enc
            gate = torch.sigmoid(self.copy_gate(torch.cat([dec, context], -1)).float())
            p_vocab = logits.float().softmax(-1)
            index = source_ids[:, None, :].expand(-1, attn.shape[1], -1)
            p_copy = torch.zeros_like(p_vocab).scatter_add_(-1, index, attn)
            logits = torch.log(gate * p_vocab + (1 - gate) * p_copy + 1e-10)
        loss = None
        if labels is not None:
            loss = nn.functional.nll_loss(torch.log_softmax(logits.float(), -1).flatten(0, 1),
                                          labels.flatten(), ignore_index=-100)
        result = Seq2SeqLMOutput(
            loss=loss, logits=logits, cache=out.cache, cross_attentions=out.cross_attentions,
            decoder_hidden_states=out.decoder_hidden_states if want_hidden else None,
            encoder_last_hidden_state=out.encoder_last_hidden_state)
        if attn is not None:
            result["copy_attention"] = attn  # where each answer token was copied from
        return result


AutoConfig.register("rag-fid-copy", CopyFiDConfig)
AutoModelForSeq2SeqLM.register(CopyFiDConfig, CopyFiDModel)


LORA_TARGETS = ["query", "key", "value", "dense"]  # every linear layer of a BERT layer


def lora_settings(rank: int) -> dict:
    return {"r": rank, "lora_alpha": 2 * rank, "lora_dropout": 0.0,
            "target_modules": LORA_TARGETS}


def add_adapters(model: "CopyFiDModel") -> None:
    """Inject the config's LoRA adapters into the encoder (peft); its own weights stay as
    they are, frozen, and only the adapters train."""
    from peft import LoraConfig, inject_adapter_in_model

    inject_adapter_in_model(LoraConfig(**model.config.lora), model.encoder)


def build_minilm_fid(base_dir: Path, decoder_layers: int = 3, frozen_layers: int = 4,
                     copy_head: bool = True, span_head: bool = False,
                     lora: int | None = None) -> CopyFiDModel:
    """A reader warm-started from the BERT at ``base_dir`` (a sentence-transformers folder).
    ``lora=r``: the whole encoder frozen, with rank-r LoRA adapters in every layer."""
    # no dropout in the encoder: most of it is frozen, and on a CPU dropout over every
    # passage token costs as much as the attention itself (measured: 2x slower steps)
    encoder = BertModel.from_pretrained(base_dir, add_pooling_layer=False,
                                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    enc_cfg = encoder.config
    dec_cfg = BertConfig(**{**enc_cfg.to_dict(), "num_hidden_layers": decoder_layers,
                            "is_decoder": True, "add_cross_attention": True,
                            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1})
    decoder = BertLMHeadModel(dec_cfg)
    # decoder embeddings = the encoder's (frozen, tied to the output layer); decoder layers
    # start from the encoder's top layers (cross-attention stays new)
    decoder.bert.embeddings.load_state_dict(encoder.embeddings.state_dict())
    top = encoder.encoder.layer[-decoder_layers:]
    for dec_layer, enc_layer in zip(decoder.bert.encoder.layer, top):
        dec_layer.attention.load_state_dict(enc_layer.attention.state_dict())
        dec_layer.intermediate.load_state_dict(enc_layer.intermediate.state_dict())
        dec_layer.output.load_state_dict(enc_layer.output.state_dict())
    decoder.tie_weights()
    config = CopyFiDConfig(encoder=enc_cfg.to_dict(), decoder=dec_cfg.to_dict(),
                           copy_head=copy_head, span_head=span_head,
                           lora=lora_settings(lora) if lora else None)
    model = CopyFiDModel(config, encoder=encoder, decoder=decoder)
    tok_cls = 101  # [CLS] starts answers; [SEP] ends them; [PAD] pads (BERT vocabulary)
    model.config.decoder_start_token_id = tok_cls
    model.config.eos_token_id = 102
    model.config.pad_token_id = 0
    model.generation_config.decoder_start_token_id = tok_cls
    model.generation_config.eos_token_id = 102
    model.generation_config.pad_token_id = 0
    freeze(model, len(encoder.encoder.layer) if lora else frozen_layers)
    if lora:
        add_adapters(model)
    return model


def freeze(model: CopyFiDModel, frozen_layers: int) -> None:
    """Freeze the embeddings and the lower ``frozen_layers`` encoder layers."""
    for p in model.encoder.embeddings.parameters():
        p.requires_grad = False
    for layer in model.encoder.encoder.layer[:frozen_layers]:
        for p in layer.parameters():
            p.requires_grad = False
    model.decoder.bert.embeddings.word_embeddings.weight.requires_grad = False


def base_mapping(model: CopyFiDModel) -> dict[str, str]:
    """Frozen parameter name -> name in the base BertModel it is loaded from."""
    mapping = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            continue
        if name.startswith("encoder."):  # (under LoRA the base weight is a base_layer's)
            mapping[name] = name[len("encoder."):].replace(".base_layer.", ".")
        elif name == "decoder.bert.embeddings.word_embeddings.weight":
            mapping[name] = "embeddings.word_embeddings.weight"
        else:
            raise ValueError(f"frozen parameter {name} has no counterpart in the base model")
    return mapping


def save_trained(model: CopyFiDModel, out: Path, base_name: str,
                 dtype: torch.dtype = torch.bfloat16) -> dict:
    """Write config.json, the trained parameters (safetensors, bf16 by default: half the
    size, no measurable loss for a reader) and the base mapping."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    mapping = base_mapping(model)
    tensors = {n: p.detach().to(dtype).contiguous().cpu() for n, p in model.named_parameters()
               if n not in mapping}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    model.config.save_pretrained(out)
    model.generation_config.save_pretrained(out)
    return {"base_model": base_name, "from_base": mapping}


def load_trained(model_dir: Path, base_model: str, from_base: dict,
                 dtype: torch.dtype = torch.float32, known: dict | None = None) -> CopyFiDModel:
    """Rebuild a reader saved by ``save_trained`` in ``dtype``: config, trained weights,
    frozen base (weights.py). ``known`` tensors (by parameter name, e.g. a span encoder's)
    are taken as they are, so both hold them once."""
    from .weights import read_weights

    config = CopyFiDConfig.from_pretrained(model_dir)
    config.encoder._attn_implementation = "eager"
    config.decoder._attn_implementation = "eager"
    with skip_init():  # every parameter is loaded below; random init would cost 0.5 s
        model = CopyFiDModel(config, encoder=BertModel(config.encoder, add_pooling_layer=False),
                             decoder=BertLMHeadModel(config.decoder))
    model.decoder.tie_weights()  # (skipped with the initialisation)
    if config.lora:
        add_adapters(model)
    wanted = {n for n, _ in model.named_parameters()}  # shared (tied) tensors listed once
    state = read_weights(model_dir, base_model, from_base, lambda n: True, dtype, known)
    if wanted - set(state) or set(state) - wanted:
        raise UsageError(f"reader {model_dir}: weights do not match its config (missing "
                         f"{sorted(wanted - set(state))[:3]}, unexpected "
                         f"{sorted(set(state) - wanted)[:3]})")
    model.load_state_dict(state, strict=False, assign=True)
    model.decoder.tie_weights()
    return model.to(dtype).eval()


def skip_init():
    """transformers' context that skips random weight initialisation, for models whose every
    weight is loaded next (it moved in transformers 5)."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:
        from transformers.modeling_utils import no_init_weights
    return no_init_weights()
