// SPDX-License-Identifier: GPL-2.0
/* Macros the Rust side of fastswap_rdma.ko cannot call directly. */
#include <linux/smp.h>
#include <linux/workqueue.h>

unsigned int fastswap_rdma_this_cpu(void);
void fastswap_rdma_init_work(struct work_struct *work, work_func_t func);
bool fastswap_rdma_queue_work(struct work_struct *work);

/* The CPU we are running on, to pick that CPU's queues. */
unsigned int fastswap_rdma_this_cpu(void)
{
	return raw_smp_processor_id();
}

/* INIT_WORK, with its static lockdep class. */
void fastswap_rdma_init_work(struct work_struct *work, work_func_t func)
{
	INIT_WORK(work, func);
}

/* Queues @work on the unbound system workqueue; false if already pending. */
bool fastswap_rdma_queue_work(struct work_struct *work)
{
	return queue_work(system_unbound_wq, work);
}
