"""Alert dispatch: the route tree and matchers, time intervals, aggregation groups, inhibition and silences."""
