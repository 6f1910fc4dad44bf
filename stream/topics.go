package stream

import (
	"context"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// EnsureTopics creates the topics that do not exist yet, with the given
// number of partitions and a replication factor of min(3, brokers).
func EnsureTopics(ctx context.Context, brokers []string, partitions int, topics ...string) error {
	cl := &kafka.Client{Addr: kafka.TCP(brokers...)}
	meta, err := cl.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		return fmt.Errorf("stream: unable to read metadata: %w", err)
	}
	rf := min(3, len(meta.Brokers))
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: rf})
	}
	resp, err := cl.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("stream: unable to create topics: %w", err)
	}
	var errs []error
	for t, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("stream: unable to create topic %s: %w", t, err))
		}
	}
	return errors.Join(errs...)
}

// Ping reports whether Kafka answers: it asks each broker in turn for its
// metadata until one answers, on a connection of its own. kafka.Client
// would not do: its transport answers metadata requests from a cache that
// it keeps, and serves, after every broker has gone away.
func Ping(ctx context.Context, brokers []string) error {
	var errs []error
	for _, b := range brokers {
		err := pingBroker(ctx, b)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("stream: no Kafka broker answers: %w", errors.Join(errs...))
}

func pingBroker(ctx context.Context, addr string) error {
	var d kafka.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	_, err = conn.Brokers()
	return err
}

// Position is a partition of a topic.
type Position struct {
	Topic     string
	Partition int
}

// EndOffsets returns the offset after the last message of every partition of
// topics: what a consumer must reach to have read all they hold now.
func EndOffsets(ctx context.Context, brokers []string, topics ...string) (map[Position]int64, error) {
	cl := &kafka.Client{Addr: kafka.TCP(brokers...)}
	parts, err := partitions(ctx, cl, topics)
	if err != nil {
		return nil, err
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for t, ps := range parts {
		for _, p := range ps {
			req.Topics[t] = append(req.Topics[t], kafka.LastOffsetOf(p))
		}
	}
	resp, err := cl.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("stream: unable to list offsets: %w", err)
	}
	ends := map[Position]int64{}
	for t, offs := range resp.Topics {
		for _, o := range offs {
			if o.Error != nil {
				return nil, fmt.Errorf("stream: unable to list the offsets of %s/%d: %w", t, o.Partition, o.Error)
			}
			ends[Position{t, o.Partition}] = o.LastOffset
		}
	}
	return ends, nil
}

// GroupHasCommitted reports whether the consumer group has committed an
// offset on any partition of topics: whether it has consumed before.
func GroupHasCommitted(ctx context.Context, brokers []string, group string, topics ...string) (bool, error) {
	cl := &kafka.Client{Addr: kafka.TCP(brokers...)}
	parts, err := partitions(ctx, cl, topics)
	if err != nil {
		return false, err
	}
	resp, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: parts})
	if err != nil {
		return false, fmt.Errorf("stream: unable to fetch the offsets of group %s: %w", group, err)
	}
	for _, ps := range resp.Topics {
		for _, p := range ps {
			if p.CommittedOffset >= 0 {
				return true, nil
			}
		}
	}
	return false, nil
}

func partitions(ctx context.Context, cl *kafka.Client, topics []string) (map[string][]int, error) {
	meta, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("stream: unable to read metadata: %w", err)
	}
	parts := map[string][]int{}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("stream: topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			parts[t.Name] = append(parts[t.Name], p.ID)
		}
	}
	return parts, nil
}
