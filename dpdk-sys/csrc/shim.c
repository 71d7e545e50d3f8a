/* Out-of-line wrappers for DPDK's static inline functions (see wrapper.h). */
#include <string.h>

#include <errno.h>
#include <stdio.h>

#include <rte_ring.h>
#include <rte_eth_ring.h>

#include "wrapper.h"

uint16_t pshim6_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t pshim6_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

struct rte_mbuf *pshim6_pktmbuf_alloc(struct rte_mempool *pool)
{
	return rte_pktmbuf_alloc(pool);
}

void pshim6_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

void pshim6_pktmbuf_free_bulk(struct rte_mbuf **pkts, unsigned int n)
{
	rte_pktmbuf_free_bulk(pkts, n);
}

int pshim6_errno(void)
{
	return rte_errno;
}

int pshim6_port_configure(uint16_t port, uint16_t nb_queues)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	int rc;

	memset(&conf, 0, sizeof(conf));
	rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0)
		return rc;
	if (nb_queues > 1) {
		uint64_t hf = RTE_ETH_RSS_IPV6 | RTE_ETH_RSS_NONFRAG_IPV6_UDP |
			      RTE_ETH_RSS_NONFRAG_IPV6_TCP | RTE_ETH_RSS_NONFRAG_IPV6_OTHER;
		hf &= info.flow_type_rss_offloads;
		if (hf != 0) {
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			conf.rx_adv_conf.rss_conf.rss_hf = hf;
			/* NULL key: the PMD's default; a flow always lands on one worker. */
			conf.rx_adv_conf.rss_conf.rss_key = NULL;
		}
	}
	return rte_eth_dev_configure(port, nb_queues, nb_queues, &conf);
}

int pshim6_link_up(uint16_t port)
{
	struct rte_eth_link link;
	int rc;

	memset(&link, 0, sizeof(link));
	rc = rte_eth_link_get_nowait(port, &link);
	if (rc != 0)
		return rc;
	return link.link_status == RTE_ETH_LINK_UP ? 1 : 0;
}

uint16_t pshim6_pktmbuf_headroom(void)
{
	return RTE_PKTMBUF_HEADROOM;
}

uint16_t pshim6_mbuf_default_buf_size(void)
{
	return RTE_MBUF_DEFAULT_BUF_SIZE;
}

int pshim6_lcore_id(void)
{
	unsigned int id = rte_lcore_id();

	return id == LCORE_ID_ANY ? -1 : (int)id;
}

int pshim6_thread_register(void)
{
	unsigned int id = rte_lcore_id();

	if (id != LCORE_ID_ANY)
		return (int)id;
	if (rte_thread_register() != 0)
		return -rte_errno;
	id = rte_lcore_id();
	return id == LCORE_ID_ANY ? -ENOSPC : (int)id;
}

void pshim6_thread_unregister(void)
{
	if (rte_lcore_id() != LCORE_ID_ANY)
		rte_thread_unregister();
}

unsigned int pshim6_mempool_cache_len(const struct rte_mempool *mp, unsigned int lcore)
{
	if (mp == NULL || mp->cache_size == 0 || mp->local_cache == NULL || lcore >= RTE_MAX_LCORE)
		return 0;
	return mp->local_cache[lcore].len;
}

unsigned int pshim6_max_lcore(void)
{
	return RTE_MAX_LCORE;
}

/* Ring names are process-wide and short (RTE_RING_NAMESIZE): numbered. A ring of `size` slots
 * (a power of two) holds size - 1 frames. Single producer, single consumer: each queue has one
 * thread on each side. */
static struct rte_ring *ring_for(unsigned int size, int socket)
{
	static unsigned int next;
	char name[RTE_RING_NAMESIZE];

	snprintf(name, sizeof(name), "pshim6_r%u", __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED));
	return rte_ring_create(name, size, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
}

int pshim6_ring_port_pair(const char *a, const char *b, uint16_t queues, unsigned int ring_size,
			  int socket, uint16_t *port_a, uint16_t *port_b)
{
	struct rte_ring *ab[RTE_MAX_QUEUES_PER_PORT];
	struct rte_ring *ba[RTE_MAX_QUEUES_PER_PORT];
	uint16_t q;
	int pa, pb;

	if (queues == 0 || queues > RTE_MAX_QUEUES_PER_PORT)
		return -EINVAL;
	for (q = 0; q < queues; q++) {
		ab[q] = ring_for(ring_size, socket);
		ba[q] = ring_for(ring_size, socket);
		if (ab[q] == NULL || ba[q] == NULL)
			return -rte_errno;
	}
	/* What a transmits on queue q, b receives on queue q, and back. */
	pa = rte_eth_from_rings(a, ba, queues, ab, queues, (unsigned int)socket);
	if (pa < 0)
		return -rte_errno;
	pb = rte_eth_from_rings(b, ab, queues, ba, queues, (unsigned int)socket);
	if (pb < 0)
		return -rte_errno;
	*port_a = (uint16_t)pa;
	*port_b = (uint16_t)pb;
	return 0;
}
