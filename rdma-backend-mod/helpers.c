// SPDX-License-Identifier: GPL-2.0
/* Macros the Rust side of fastswap_rdma.ko cannot call directly. */
#include <linux/smp.h>

unsigned int fastswap_rdma_this_cpu(void);

/* The CPU we are running on, to pick that CPU's queues. */
unsigned int fastswap_rdma_this_cpu(void)
{
	return raw_smp_processor_id();
}
