// Sends a GrowthBook SDK's exposures to Sluice: give `trackingCallback` to
// `new GrowthBook({...})`, and call `flush()` now and then and before exiting.
export function sluiceExposures(sluiceUrl, sdkKey) {
  const queue = [];
  return {
    // experiment.key is the Sluice experiment, result.key the variant key (from
    // the rule's meta), result.hashValue the unit Sluice counts.
    trackingCallback(experiment, result) {
      queue.push({
        id: crypto.randomUUID(),
        type: "exposure",
        user: String(result.hashValue),
        experiment: experiment.key,
        variant: result.key,
        ts: new Date().toISOString(),
      });
    },
    async flush() {
      const events = queue.splice(0, 10_000); // Sluice takes up to 10,000 a batch
      if (events.length === 0) return { accepted: 0, duplicates: 0 };
      const res = await fetch(`${sluiceUrl}/sdk/v1/events`, {
        method: "POST",
        headers: { Authorization: `Bearer ${sdkKey}`, "Content-Type": "application/json" },
        body: JSON.stringify({ events }),
      });
      if (!res.ok) {
        queue.unshift(...events); // safe to send again: Sluice stores each id once
        throw new Error(`Sluice refused the exposures: ${res.status} ${await res.text()}`);
      }
      return res.json();
    },
  };
}
