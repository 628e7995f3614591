# Copyright 2026 rrto_ros authors. Apache-2.0.
"""One cuDNN convolution and one batch norm, checked against the CPU: the smallest test of
the cuDNN forwarding (run it under bench/torch_under_rrto.sh)."""

import torch

torch.manual_seed(0)
conv = torch.nn.Conv2d(3, 8, 3, padding=1).eval()
bn = torch.nn.BatchNorm2d(8).eval()
x = torch.rand(1, 3, 16, 16)
want = bn(conv(x))
with torch.no_grad():
    got = bn.cuda()(conv.cuda()(x.cuda())).cpu()
print('cudnn', torch.backends.cudnn.version(), 'max abs diff',
      float((got - want).abs().max()))
with torch.no_grad():
    again = bn(conv(x.cuda())).cpu()
print('repeat identical', bool(torch.equal(got, again)))
