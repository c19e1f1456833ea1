// SPDX-License-Identifier: GPL-2.0
/* Macros the Rust side of fastswap_rdma.ko cannot call directly. */
#include <linux/smp.h>
#include <linux/workqueue.h>
#include <linux/completion.h>
#include <linux/jiffies.h>

unsigned int fastswap_rdma_this_cpu(void);
void fastswap_rdma_init_work(struct work_struct *work, work_func_t func);
int fastswap_rdma_wq_create(void);
void fastswap_rdma_wq_destroy(void);
bool fastswap_rdma_queue_work(struct work_struct *work);
void fastswap_rdma_reinit_completion(struct completion *c);

/*
 * The module's own workqueue, with a rescuer: the device removal that waits
 * for our work may run while memory is short (stores then go to the swap
 * device), when a new worker of a shared pool may not be creatable.
 */
static struct workqueue_struct *fastswap_rdma_wq;

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

int fastswap_rdma_wq_create(void)
{
	fastswap_rdma_wq = alloc_workqueue("fastswap_rdma",
					   WQ_MEM_RECLAIM | WQ_UNBOUND, 0);
	return fastswap_rdma_wq ? 0 : -ENOMEM;
}

/* Waits for queued work; nothing may queue after this. */
void fastswap_rdma_wq_destroy(void)
{
	destroy_workqueue(fastswap_rdma_wq);
	fastswap_rdma_wq = NULL;
}

/* Queues @work on the module's workqueue; false if already pending. */
bool fastswap_rdma_queue_work(struct work_struct *work)
{
	return queue_work(fastswap_rdma_wq, work);
}

/* reinit_completion, for a queue connecting again. */
void fastswap_rdma_reinit_completion(struct completion *c)
{
	reinit_completion(c);
}

