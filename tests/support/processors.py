"""A coffea processor that applies the correction, for the processor.Runner tests (importable by workers)."""

import awkward as ak
import numpy as np
from coffea import processor


class CorrectedJets(processor.ProcessorABC):
    """Each chunk's jets above 20 GeV, corrected: their event number, pt as read and corrected pt."""

    def __init__(self, correction):
        self.correction = correction  # pickled to each worker without its ONNX Runtime session

    def process(self, events):
        jets = self.correction.corrected_jets(events.Jet[events.Jet.pt > 20])
        event = ak.broadcast_arrays(events.event, jets.pt)[0]
        return {name: processor.column_accumulator(np.asarray(ak.flatten(values)))
                for name, values in (("event", event), ("pt_orig", jets.pt_orig), ("pt", jets.pt))}

    def postprocess(self, accumulator):
        return accumulator
