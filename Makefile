# Builds fastswap.ko and one backend against a Fastswap-patched kernel.
#   make BACKEND=RDMA|DRAM [KDIR=/path/to/kernel/build]
KDIR ?= /lib/modules/$(shell uname -r)/build
BACKEND ?= DRAM
# Kernel Rust must be built with the rustc the kernel was configured with.
RUSTC ?= $(firstword $(wildcard /usr/bin/rustc) rustc)
KMAKE = $(MAKE) -C $(KDIR) LLVM=1 RUSTC=$(RUSTC)

ifeq ($(BACKEND),DRAM)
BACKEND_DIR := dram-backend-mod
BACKEND_KO := fastswap_dram.ko
else ifeq ($(BACKEND),RDMA)
BACKEND_DIR := rdma-backend-mod
BACKEND_KO := fastswap_rdma.ko
else
$(error BACKEND must be RDMA or DRAM)
endif

.PHONY: all clean
all:
	$(KMAKE) M=$(CURDIR)/frontswap-mod modules
	$(KMAKE) M=$(CURDIR)/$(BACKEND_DIR) modules
	cp frontswap-mod/fastswap.ko $(BACKEND_DIR)/$(BACKEND_KO) .

clean:
	for d in frontswap-mod dram-backend-mod rdma-backend-mod; do \
		[ -f $$d/Kbuild ] && $(KMAKE) M=$(CURDIR)/$$d clean; done; true
	rm -f fastswap.ko fastswap_dram.ko fastswap_rdma.ko
