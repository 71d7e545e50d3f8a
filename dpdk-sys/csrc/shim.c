/* Out-of-line wrappers for DPDK's static inline functions (see wrapper.h). */
#include <string.h>

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
