/**
 * Screen 2: the target disk. Every whole disk is listed with its size, model, serial,
 * transport and what is on it; the disk of the running system, one with anything mounted
 * and the install medium are shown but refused, with the reason.
 */
import { useState } from 'react';
import { Box, Text } from 'ink';
import { useKeys, useStateRef } from '../keys.js';
import { humanBytes } from '../../core/progress.js';
import type { DiskCandidate } from '../../disk/inventory.js';
import { ErrorText, Keys, Muted, Row, Title } from '../theme.js';

export interface DiskScreenProps {
  disks: DiskCandidate[];
  onChoose: (disk: DiskCandidate) => void;
  onBack: () => void;
  onRescan: () => void;
}

/** Rows that fit 25 lines with the title, details and key help. */
const VISIBLE_ROWS = 8;
const pad = (s: string, n: number): string => (s.length > n ? s.slice(0, n - 1) + '~' : s.padEnd(n));

export function diskRow(d: DiskCandidate): string {
  const contents = d.partitions.length > 0 ? `${d.partitions.length} part.` : d.fstype ?? d.pttype ?? (d.mountpoints.length > 0 ? 'mounted' : 'empty');
  return [pad(d.path, 13), pad(humanBytes(d.sizeBytes), 10), pad(d.model ?? '-', 16), pad(d.serial ?? d.wwn ?? '-', 13), pad(d.transport ?? '-', 6), pad(contents, 8), d.refusal ? 'IN USE' : ''].join(' ');
}

export function DiskScreen({ disks, onChoose, onBack, onRescan }: DiskScreenProps) {
  const firstUsable = Math.max(0, disks.findIndex((d) => d.refusal === null));
  const [cursor, setCursor, cursorRef] = useStateRef(firstUsable);
  const [refused, setRefused] = useState<string | null>(null);
  useKeys((input, key) => {
    if (key.upArrow) setCursor((c) => Math.max(0, c - 1));
    else if (key.downArrow) setCursor((c) => Math.min(disks.length - 1, c + 1));
    else if (key.leftArrow || input === 'b') onBack();
    else if (input === 'r') onRescan();
    else if (key.return) {
      const d = disks[cursorRef.current];
      if (!d) return;
      if (d.refusal) setRefused(`Cannot install to ${d.path}: ${d.refusal}`);
      else onChoose(d);
      return;
    }
    if (!key.return) setRefused(null);
  });
  const top = Math.min(Math.max(0, cursor - VISIBLE_ROWS + 1), Math.max(0, disks.length - VISIBLE_ROWS));
  const current = disks[cursor];
  return (
    <Box flexDirection="column">
      <Title>Install a bootable container image - 2/5 Disk</Title>
      <Text>Which disk should be erased and installed to?</Text>
      <Muted>{'  ' + [pad('DEVICE', 13), pad('SIZE', 10), pad('MODEL', 16), pad('SERIAL', 13), pad('TRAN', 6), pad('CONTENTS', 8)].join(' ')}</Muted>
      {disks.length === 0 ? <ErrorText>No disks found (lsblk lists no whole disks). Attach a disk and press r.</ErrorText> : null}
      {disks.slice(top, top + VISIBLE_ROWS).map((d, i) => (
        <Row key={d.path} selected={top + i === cursor} muted={d.refusal !== null}>
          {diskRow(d)}
        </Row>
      ))}
      {disks.length > VISIBLE_ROWS ? <Muted>{`  (${disks.length} disks; Up/Down scrolls)`}</Muted> : null}
      {current ? (
        <Box flexDirection="column" marginTop={1}>
          {current.refusal ? <ErrorText>{`In use: ${current.refusal}`}</ErrorText> : null}
          {current.mountpoints.length > 0 ? <Text wrap="truncate-end">{`  ${current.path} mounted at ${current.mountpoints.join(', ')}`}</Text> : null}
          {current.partitions.slice(0, 4).map((p) => (
            <Text key={p.path} wrap="truncate-end">{`  ${p.path}  ${humanBytes(p.sizeBytes)}  ${p.fstype ?? 'no filesystem'}${p.label ? `  "${p.label}"` : ''}${p.mountpoints.length ? `  mounted at ${p.mountpoints.join(', ')}` : ''}`}</Text>
          ))}
          {current.partitions.length > 4 ? <Muted>{`  ... ${current.partitions.length - 4} more`}</Muted> : null}
        </Box>
      ) : null}
      {refused ? <ErrorText>{refused}</ErrorText> : null}
      <Keys>Up/Down choose | Enter select | r rescan | Left back | Tab log | Esc quit</Keys>
    </Box>
  );
}
